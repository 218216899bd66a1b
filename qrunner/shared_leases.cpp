// shared_leases: connections per destination and provider counted across hosts, as leases that expire with their host.
#include "qrunner/shared_leases.hpp"

#include <unistd.h>

namespace mxlane::qrunner {

namespace {

// While a lease is asked for, the scheduler looks again this soon (the answer wakes it too).
constexpr auto kAskingRetry = std::chrono::milliseconds(20);

}  // namespace

SharedLeases::SharedLeases(std::unique_ptr<LeaseBackend> backend, SharedState& shared, std::string host)
    : backend_(std::move(backend)), shared_(shared), prefix_(host + ":" + std::to_string(::getpid()) + ":") {}

std::string SharedLeases::next_member() { return prefix_ + std::to_string(++next_); }

SharedLeases::Clock::time_point SharedLeases::ready_at(const std::string& name, int limit, Clock::time_point now) {
    if (!shared_.sharing()) return now;  // this host's share of the limit decides
    Clock::time_point when = now;
    {
        std::lock_guard lock(mu_);
        Name& n = names_[name];
        if (n.spare) return now;
        if (n.asking) return now + kAskingRetry;
        if (n.retry_at > now) return n.retry_at;
        n.asking = true;
        when = now + kAskingRetry;
    }
    ask(name, limit, now);
    return when;
}

void SharedLeases::ask(const std::string& name, int limit, Clock::time_point now) {
    std::string member;
    {
        std::lock_guard lock(mu_);
        member = next_member();
    }
    backend_->lease(name, member, limit, [this, name, member, now](std::optional<bool> granted) {
        {
            std::lock_guard lock(mu_);
            Name& n = names_[name];
            n.asking = false;
            if (granted && *granted) {
                n.spare = member;
                n.spare_old = false;
            } else if (granted) {
                n.retry_at = now + kRetry;  // from the asking
            }
        }
        if (!granted) shared_.lost("no answer to a lease request");
        else if (*granted && wake_) wake_();
    });
}

void SharedLeases::opened(const std::string& name) {
    std::lock_guard lock(mu_);
    Name& n = names_[name];
    // Without a spare (Redis away, or it just came back): a member all the
    // same, which the next renewal gives Redis, so that the connection counts.
    n.held.push_back(n.spare ? *n.spare : next_member());
    n.spare.reset();
}

void SharedLeases::closed(const std::string& name) {
    std::string member;
    {
        std::lock_guard lock(mu_);
        auto it = names_.find(name);
        if (it == names_.end() || it->second.held.empty()) return;
        member = std::move(it->second.held.back());
        it->second.held.pop_back();
    }
    backend_->release(name, member);
}

void SharedLeases::renew() {
    std::map<std::string, std::vector<std::string>> held;
    std::vector<std::pair<std::string, std::string>> unused;
    {
        std::lock_guard lock(mu_);
        const auto now = Clock::now();
        for (auto it = names_.begin(); it != names_.end();) {
            Name& n = it->second;
            if (n.spare && n.spare_old) {  // its destination found no use for it: another host may
                unused.emplace_back(it->first, *n.spare);
                n.spare.reset();
            }
            n.spare_old = n.spare.has_value();
            if (n.held.empty() && !n.spare && !n.asking && n.retry_at <= now) {
                it = names_.erase(it);
                continue;
            }
            auto& members = held[it->first];
            members = n.held;
            if (n.spare) members.push_back(*n.spare);
            ++it;
        }
    }
    for (const auto& [name, member] : unused) backend_->release(name, member);
    if (!held.empty()) backend_->refresh(held, [](bool) {});  // no answer: the heartbeat tells
}

int SharedLeases::held(const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = names_.find(name);
    return it == names_.end() ? 0 : static_cast<int>(it->second.held.size());
}

}  // namespace mxlane::qrunner
