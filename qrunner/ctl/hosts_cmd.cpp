// hosts_cmd: mxlanectl hosts [--json]: the hosts sharing shared_state, their last heartbeat and connections in flight.
#include <boost/asio/io_context.hpp>

#include <iostream>

#include "libshared/dates.hpp"
#include "libshared/json.hpp"
#include "libshared/store/queue_store.hpp"
#include "qrunner/ctl/ctl.hpp"
#include "qrunner/shared_state_redis.hpp"

namespace mxlane::ctl {

namespace {

using qrunner::HostRow;

std::string in_flight_text(const json::object& counts) {
    std::string out;
    for (const auto& [name, n] : counts)
        out += (out.empty() ? "" : " ") + std::string(name) + "=" + json::serialize(n);
    return out.empty() ? "-" : out;
}

}  // namespace

std::optional<qrunner::RedisReply> ask_shared_state(const Config& cfg, std::vector<std::string> command) {
    const auto timeout = std::chrono::seconds(cfg.seconds("shared_state_timeout"));
    boost::asio::io_context io;
    qrunner::RedisClient redis(io.get_executor(), qrunner::shared_state_url(cfg), timeout);
    std::optional<qrunner::RedisReply> answer;
    redis.on_state([&](bool up) {
        if (!up) return;
        redis.command(std::move(command), [&](std::optional<qrunner::RedisReply> r) {
            answer = std::move(r);
            io.stop();
        });
    });
    redis.start();
    io.run_for(timeout + std::chrono::milliseconds(500));
    return answer;
}

int cmd_hosts(Context& c) {
    c.no_more_args(0);
    if (c.cfg.get("shared_state").empty()) {
        std::cerr << "mxlanectl: shared_state is empty: this host sends alone\n";
        return 1;
    }
    const auto reply = ask_shared_state(c.cfg, {"HGETALL", qrunner::kHostsKey});
    std::optional<std::vector<HostRow>> answer;
    if (reply && reply->type == qrunner::RedisReply::Type::array) answer = qrunner::host_rows(*reply);
    if (!answer) {
        std::cerr << "mxlanectl: shared_state " << c.cfg.get("shared_state") << " does not answer\n";
        return 1;
    }
    auto& rows = *answer;
    std::sort(rows.begin(), rows.end(), [](const HostRow& a, const HostRow& b) { return a.host < b.host; });
    const std::int64_t now = store::now_ms();
    auto alive = [&](const HostRow& r) { return now - r.last_ms <= qrunner::SharedState::kHostTimeoutMs; };
    if (c.json) {
        json::array list;
        for (const auto& r : rows)
            list.push_back(json::object{{"host", r.host},
                                        {"last_heartbeat", iso_time(r.last_ms)},
                                        {"age_s", (now - r.last_ms) / 1000},
                                        {"alive", alive(r)},
                                        {"in_flight", r.in_flight}});
        std::cout << json::serialize(std::move(list)) << "\n";
        return 0;
    }
    if (rows.empty()) {
        std::cout << "No host has sent a heartbeat\n";
        return 0;
    }
    Table t({"HOST", "LAST HEARTBEAT", "AGE", "STATE", "IN FLIGHT"});
    for (const auto& r : rows)
        t.add({r.host, iso_time(r.last_ms), std::to_string((now - r.last_ms) / 1000) + "s",
               alive(r) ? "alive" : "gone", in_flight_text(r.in_flight)});
    std::cout << t.str();
    return 0;
}

}  // namespace mxlane::ctl
