// config_cmd: mxlanectl config [-n] [-x] [-r]: the effective configuration, like postconf [-n].
#include <iostream>

#include "libshared/json.hpp"
#include "libshared/params.hpp"
#include "qrunner/ctl/ctl.hpp"

namespace mxlane::ctl {

int cmd_config(Context& c) {
    bool only_set = c.take_flag("-n");
    bool expand = c.take_flag("-x");
    bool restart_only = c.take_flag("-r");  // what a SIGHUP does not apply
    c.no_more_args();
    json::object doc;
    for (const ParamDef& def : param_table()) {
        std::string name(def.name);
        if (only_set && !c.cfg.set_in_file(name)) continue;
        if (restart_only && !def.restart) continue;
        std::string value = expand ? c.cfg.get(name) : c.cfg.unexpanded(name);
        if (c.json) doc[name] = value;
        else std::cout << name << " = " << value << "\n";
    }
    if (c.json) std::cout << json::serialize(std::move(doc)) << "\n";
    return 0;
}

}  // namespace mxlane::ctl
