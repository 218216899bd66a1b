// site: what the qrunner serves on http_listen: one-click unsubscribe (RFC 8058) and /metrics.
#include "qrunner/http/site.hpp"

#include <filesystem>

#include "libshared/log.hpp"
#include "libshared/printable.hpp"
#include "libshared/recipient_token.hpp"

namespace mxlane::qrunner::http {

namespace {

std::string html_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

Response page(int status, const std::string& title, const std::string& body_html) {
    Response r;
    r.status = status;
    r.content_type = "text/html; charset=utf-8";
    r.fields["Cache-Control"] = "no-store";
    r.body = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">"
             "<title>" + title + "</title></head>\n<body>\n" + body_html + "\n</body></html>\n";
    return r;
}

Response not_found() { return page(404, "Not found", "<p>This link is not valid (any more).</p>"); }

}  // namespace

Site::Site(store::QueueStore& store, std::string queue_directory, std::function<std::string()> metrics,
           std::function<void(const store::Recipient&)> unsubscribed)
    : store_(store),
      queue_directory_(std::move(queue_directory)),
      destination_metrics_(std::move(metrics)),
      unsubscribed_(std::move(unsubscribed)) {}

Response Site::operator()(const Request& r) {
    if (r.target == "/metrics") {
        if (r.method != "GET" && r.method != "HEAD") return {405, "text/plain; charset=utf-8", "GET only\n", {{"Allow", "GET, HEAD"}}};
        return metrics();
    }
    if (r.target.starts_with("/u/")) {
        if (r.method != "GET" && r.method != "POST")
            return {405, "text/plain; charset=utf-8", "GET or POST only\n", {{"Allow", "GET, POST"}}};
        return unsubscribe(r, r.target.substr(3));
    }
    return {404, "text/plain; charset=utf-8", "not found\n", {}};
}

Response Site::unsubscribe(const Request& r, const std::string& token) {
    const auto ref = recipient_token_check(queue_directory_, token);
    if (!ref) return not_found();
    const auto rcpt = store_.recipient(ref->job_id, ref->seq);
    if (!rcpt) return not_found();
    const std::string address = html_escape(rcpt->address);
    if (r.method == "GET")
        return page(200, "Unsubscribe",
                    "<p>Stop sending mail to <b>" + address + "</b>?</p>\n"
                    "<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                    "<button type=\"submit\">Unsubscribe</button></form>");
    const bool added = store_.suppress(rcpt->address, "unsubscribed", store::now_ms(), ref->job_id);
    if (added) {
        log::info(store::format_job_id(ref->job_id) + ": to=<" + printable(rcpt->address) +
                  ">, unsubscribed by one-click (suppressed)");
        if (unsubscribed_) unsubscribed_(*rcpt);
    }
    return page(200, "Unsubscribed", "<p><b>" + address + "</b> is unsubscribed: no more mail will be sent to it.</p>");
}

Response Site::metrics() {
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    std::string out;
    // Recipients and jobs by state, from the job records' counters: no scan of the recipients.
    std::array<std::uint64_t, store::kStateCount> rcpts{};
    std::map<std::string, std::uint64_t> jobs;
    std::int64_t oldest = 0;  // creation of the oldest job with recipients still to send
    for (const auto& j : store_.jobs()) {
        for (std::size_t i = 0; i < store::kStateCount; ++i) rcpts[i] += j.counts[i];
        ++jobs[std::string(store::job_state_name(j.state))];
        if (j.pending() > 0 && (oldest == 0 || j.created < oldest)) oldest = j.created;
    }
    out += "# HELP mxlane_recipients Recipients in the queue by state.\n# TYPE mxlane_recipients gauge\n";
    for (std::size_t i = 0; i < store::kStateCount; ++i)
        out += "mxlane_recipients{state=\"" + std::string(store::state_name(static_cast<store::RcptState>(i))) +
               "\"} " + std::to_string(rcpts[i]) + "\n";
    out += "# HELP mxlane_jobs Jobs in the queue by state.\n# TYPE mxlane_jobs gauge\n";
    for (const auto& [state, n] : jobs) out += "mxlane_jobs{state=\"" + state + "\"} " + std::to_string(n) + "\n";
    out += "# HELP mxlane_suppressed_addresses Addresses on the suppression list.\n"
           "# TYPE mxlane_suppressed_addresses gauge\n";
    out += "mxlane_suppressed_addresses " + std::to_string(store_.suppressions().size()) + "\n";
    out += "# HELP mxlane_queue_age_seconds Age of the oldest job with recipients still to send (0: none).\n"
           "# TYPE mxlane_queue_age_seconds gauge\n";
    out += "mxlane_queue_age_seconds " +
           std::to_string(oldest ? std::max<std::int64_t>(0, (store::now_ms() - oldest) / 1000) : 0) + "\n";
    // The store's files (databases and logs) as the disk sees them: a stat each, no read.
    std::uintmax_t bytes = 0;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(queue_directory_, ec))
        if (f.is_regular_file(ec))
            if (const auto size = f.file_size(ec); !ec) bytes += size;
    out += "# HELP mxlane_store_bytes Size of the files in queue_directory (the store's databases and logs).\n"
           "# TYPE mxlane_store_bytes gauge\n";
    out += "mxlane_store_bytes " + std::to_string(bytes) + "\n";
    if (destination_metrics_) out += destination_metrics_();
    r.body = std::move(out);
    return r;
}

}  // namespace mxlane::qrunner::http
