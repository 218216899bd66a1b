// outcome: owners that give every claimed recipient exactly one outcome, whatever ends a delivery.
#include "qrunner/outcome.hpp"

#include "libshared/log.hpp"

namespace mxlane::qrunner {

OwnedWork& OwnedWork::operator=(OwnedWork&& o) noexcept {
    if (this != &o) {
        fail_unreported();
        gate_ = std::move(o.gate_);
        work_ = std::exchange(o.work_, std::nullopt);
        failure_ = std::move(o.failure_);
    }
    return *this;
}

OwnedWork::~OwnedWork() { fail_unreported(); }

void OwnedWork::conclude(const std::vector<Reply>& replies, const std::string& relay, double connect_s,
                         double transmit_s, const std::vector<std::string>& details) {
    if (!work_) return;
    Work w = std::move(*work_);
    work_.reset();
    if (auto* sink = gate_ ? gate_->sink() : nullptr) sink->conclude(w, replies, relay, connect_s, transmit_s, details);
}

void OwnedWork::conclude_all(const Reply& why, const std::string& relay) {
    if (!work_) return;
    conclude(std::vector<Reply>(work_->rcpts.size(), why), relay);
}

void OwnedWork::put_back(std::int64_t due_ms) {
    if (!work_) return;
    Work w = std::move(*work_);
    work_.reset();
    if (auto* sink = gate_ ? gate_->sink() : nullptr) sink->put_back(w, due_ms);
}

void OwnedWork::fail_unreported() noexcept {
    if (!work_) return;
    try {
        const std::string why = failure_.empty() ? "delivery ended without a result" : failure_;
        const std::string id = work_->message ? work_->message->job_token
                               : work_->rcpts.empty() ? std::string("delivery")
                                                      : store::format_job_id(work_->rcpts.front().job_id);
        if (gate_ && !gate_->closed())
            log::error(id + ": " + std::to_string(work_->rcpts.size()) +
                       " recipients had no delivery result (" + why + "); deferred");
        conclude_all(Reply::make(451, "4.3.0", "local delivery error: " + why), "none");
    } catch (...) {
        // Nothing more can be done here: the recipients stay in flight in the
        // store and are due again at the next start.
    }
    work_.reset();
}

ConnectionSlot::~ConnectionSlot() {
    try {
        if (auto* sink = gate_ ? gate_->sink() : nullptr) sink->connection_done(destination_);
    } catch (...) {
    }
}

}  // namespace mxlane::qrunner
