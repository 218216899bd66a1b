// verify: mxlanectl verify ADDR... | --file FILE [--suppress]: probe addresses without sending anything.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fstream>
#include <iostream>
#include <map>

#include "libshared/address.hpp"
#include "libshared/csv.hpp"
#include "libshared/json.hpp"
#include "qrunner/ctl/address_probe.hpp"
#include "qrunner/ctl/ctl.hpp"
#include "qrunner/ctl/progress.hpp"

namespace mxlane::ctl {
namespace {

namespace asio = boost::asio;

// One address a line, or a CSV whose first column is the address (a recipients
// file or an export): a first row without '@' is its header and is skipped.
std::vector<std::string> addresses_in(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError(path + ": cannot open the address file");
    CsvReader csv(in);
    std::vector<std::string> fields, out;
    try {
        while (csv.next(fields)) {
            std::string a = strip_brackets(fields.at(0));
            if (a.empty() || a.front() == '#' || (csv.line() == 1 && a.find('@') == std::string::npos)) continue;
            out.push_back(a);
        }
    } catch (const CsvError& e) {
        throw UsageError(path + ":" + std::to_string(e.line()) + ": " + e.reason());
    }
    return out;
}

using ByDomain = std::map<std::string, std::vector<ProbeResult*>>;

// What the workers share; they all run on one thread, so no lock.
struct ProbeRun {
    asio::io_context& io;
    dns::Resolver& resolver;
    const qrunner::Settings& settings;
    ByDomain::iterator next, end;
    Progress& progress;
};

// Takes domains one by one until none is left. (A plain function, not a lambda nor
// structured bindings: GCC 12 miscompiles both in coroutines.)
asio::awaitable<void> probe_worker(ProbeRun* run) {
    while (run->next != run->end) {
        ByDomain::iterator it = run->next++;
        co_await probe_domain(run->io.get_executor(), run->resolver, run->settings, it->first, it->second);
        run->progress.step(it->second.size());
    }
}

// Probes every domain, at most max_connections at once, on one thread.
void probe_all(const qrunner::Settings& settings, ByDomain& by_domain, Progress& progress) {
    asio::io_context io;
    dns::Resolver resolver(io, settings.cfg.list("dns_servers"),
                           std::chrono::seconds(settings.cfg.seconds("dns_timeout")));
    ProbeRun run{io, resolver, settings, by_domain.begin(), by_domain.end(), progress};
    std::size_t workers = std::min<std::size_t>(by_domain.size(), std::max<std::size_t>(1, settings.max_connections));
    std::size_t running = workers;
    std::exception_ptr failure;
    for (std::size_t i = 0; i < workers; ++i)
        asio::co_spawn(io, probe_worker(&run), [&](std::exception_ptr e) {
            if (e && !failure) failure = e;
            if (--running == 0) resolver.shutdown();  // lets io.run() return
        });
    if (workers == 0) resolver.shutdown();
    io.run();
    if (failure) std::rethrow_exception(failure);
}

void print(const Context& c, const std::vector<ProbeResult>& results) {
    if (c.json) {
        json::array list;
        for (const auto& r : results)
            list.push_back(json::object{{"address", r.address},
                                        {"result", to_string(r.verdict)},
                                        {"reply", r.reply.str()},
                                        {"code", r.reply.code},
                                        {"dsn", r.reply.enhanced},
                                        {"host", r.host}});
        std::cout << json::serialize(std::move(list)) << "\n";
        return;
    }
    Table t({"ADDRESS", "RESULT", "HOST", "REPLY"});
    for (const auto& r : results)
        t.add({r.address, std::string(to_string(r.verdict)), r.host.empty() ? "-" : r.host, r.reply.str()});
    std::cout << t.str();
}

}  // namespace

int cmd_verify(Context& c) {
    bool suppress = c.take_flag("--suppress");
    auto file = c.take_option("--file");
    std::vector<std::string> addresses = file ? addresses_in(*file) : c.args;
    if (file) c.no_more_args();
    for (const auto& a : c.args)
        if (a.starts_with("-")) throw UsageError("verify: unknown option " + a);
    if (addresses.empty()) throw UsageError(file ? *file + ": no addresses" : "verify needs ADDR... or --file FILE");
    auto settings = qrunner::Settings::load(c.cfg);

    std::vector<ProbeResult> results(addresses.size());
    ByDomain by_domain;
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        results[i].address = strip_brackets(addresses[i]);
        if (!valid_address(results[i].address)) {
            results[i].verdict = Verdict::invalid;
            results[i].reply = Reply::make(501, "5.1.3", "bad address syntax");
        } else {
            by_domain[domain_of(results[i].address)].push_back(&results[i]);
        }
    }
    Progress progress("verify: addresses checked:");
    probe_all(*settings, by_domain, progress);
    progress.done();
    if (suppress)
        for (const auto& r : results)
            if (r.verdict == Verdict::invalid && valid_address(r.address))
                c.store().suppress(r.address, "verify: " + r.reply.str(), store::now_ms());
    print(c, results);
    return 0;
}

}  // namespace mxlane::ctl
