// domain_checks: the qrunner's sender checks of From: domains, run on a thread of their own and kept for a while.
#include "qrunner/compliance/domain_checks.hpp"

#include <boost/asio/post.hpp>

namespace mxlane::compliance {

std::shared_future<Rows> DomainChecks::check(const std::string& domain, CheckJob job,
                                             std::function<void(const std::string&, const Rows&)> done) {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    const auto key = std::make_pair(domain, job.pool);
    if (auto it = kept_.find(key); it != kept_.end() && it->second.until > now) return it->second.rows;
    auto promise = std::make_shared<std::promise<Rows>>();
    std::shared_future<Rows> rows = promise->get_future().share();
    kept_[key] = Kept{rows, Clock::time_point::max()};
    boost::asio::post(thread_, [this, domain, key, job = std::move(job), promise, done = std::move(done)] {
        Rows result;
        try {
            result = run(domain, job);
        } catch (const std::exception& e) {
            result = {{"check", domain, "warn", std::string("the check failed: ") + e.what()}};
        }
        {
            std::lock_guard lock(mu_);
            kept_[key].until = Clock::now() + lifetime_;
        }
        promise->set_value(result);
        if (done) done(domain, result);
    });
    return rows;
}

Rows DomainChecks::run(const std::string& domain, const CheckJob& job) {
    if (stopping_) return {{"check", domain, "warn", "not checked: the qrunner is stopping"}};
    ResolverClient dns(job.dns_servers, job.dns_timeout);
    {
        std::lock_guard lock(mu_);
        current_ = &dns;
    }
    Rows rows;
    try {
        rows = check_all(dns, job.setup, {domain});
    } catch (...) {
        std::lock_guard lock(mu_);
        current_ = nullptr;
        throw;
    }
    std::lock_guard lock(mu_);
    current_ = nullptr;
    return rows;
}

void DomainChecks::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        if (current_) current_->stop();
    }
    thread_.join();
}

}  // namespace mxlane::compliance
