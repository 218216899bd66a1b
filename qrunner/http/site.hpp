// site: what the qrunner serves on http_listen: one-click unsubscribe (RFC 8058) and /metrics.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "libshared/store/queue_store.hpp"
#include "qrunner/http/server.hpp"

namespace mxlane::qrunner::http {

// The routes:
//   GET  /u/TOKEN  a page naming the address, with a button that POSTs (a GET
//                  alone unsubscribes nobody: link scanners follow links)
//   POST /u/TOKEN  puts the token's recipient on the suppression list, reason
//                  "unsubscribed" (RFC 8058 one-click; the page's button too)
//   GET  /metrics  Prometheus text format
// A token that does not verify, or names a recipient no longer in the queue,
// gets 404 and changes nothing; other methods 405, other paths 404.
class Site {
public:
    // metrics: the exposition text of the running qrunner (its destinations);
    // unsubscribed: told of each address a POST put on the suppression list (its event).
    Site(store::QueueStore& store, std::string queue_directory, std::function<std::string()> metrics,
         std::function<void(const store::Recipient&)> unsubscribed = {});
    Response operator()(const Request& r);

private:
    Response unsubscribe(const Request& r, const std::string& token);
    Response metrics();

    store::QueueStore& store_;
    std::string queue_directory_;
    std::function<std::string()> destination_metrics_;
    std::function<void(const store::Recipient&)> unsubscribed_;
};

}  // namespace mxlane::qrunner::http
