// progress: a running count on stderr for long commands, only when a person watches (a terminal).
#include "qrunner/ctl/progress.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace mxlane::ctl {
namespace {

long long steady_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

// Scripts and tests read stderr for the one error line: progress would be noise there.
Progress::Progress(std::string what) : what_(std::move(what)), tty_(isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() { done(); }

void Progress::step(std::size_t n) {
    count_ += n;
    if (!tty_) return;
    long long now = steady_ms();
    if (now - last_draw_ms_ < 200) return;
    last_draw_ms_ = now;
    draw();
}

void Progress::draw() {
    std::fprintf(stderr, "\r%s %zu", what_.c_str(), count_);
    std::fflush(stderr);
    open_ = true;
}

void Progress::done() {
    if (!tty_ || count_ == 0) return;
    draw();
    std::fputc('\n', stderr);
    open_ = false;
    count_ = 0;
}

}  // namespace mxlane::ctl
