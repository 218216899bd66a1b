// progress: a running count on stderr for long commands, only when a person watches (a terminal).
#pragma once
#include <cstddef>
#include <string>

namespace mxlane::ctl {

class Progress {
public:
    explicit Progress(std::string what);  // "submit: checked", "export: wrote"...
    ~Progress();
    // Counts one more item; redraws at most a few times a second.
    void step(std::size_t n = 1);
    // Ends the line (the count stays visible).
    void done();

private:
    void draw();
    std::string what_;
    std::size_t count_ = 0;
    long long last_draw_ms_ = 0;
    bool tty_ = false, open_ = false;
};

}  // namespace mxlane::ctl
