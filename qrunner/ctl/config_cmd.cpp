// config_cmd: mxlanectl config [-n]: the effective configuration, like postconf [-n].
#include <iostream>

#include "libshared/json.hpp"
#include "libshared/params.hpp"
#include "qrunner/ctl/ctl.hpp"

namespace mxlane::ctl {

int cmd_config(Context& c) {
    bool only_set = c.take_flag("-n");
    bool expand = c.take_flag("-x");
    c.no_more_args();
    JsonWriter j;
    j.begin_object();
    for (const ParamDef& def : param_table()) {
        std::string name(def.name);
        if (only_set && !c.cfg.set_in_file(name)) continue;
        std::string value = expand ? c.cfg.get(name) : c.cfg.unexpanded(name);
        if (c.json) j.key(name).value(value);
        else std::cout << name << " = " << value << "\n";
    }
    j.end_object();
    if (c.json) std::cout << j.str() << "\n";
    return 0;
}

}  // namespace mxlane::ctl
