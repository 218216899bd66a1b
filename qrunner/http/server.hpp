// server: the qrunner's small HTTP server on http_listen (one-click unsubscribe, /metrics), bounded in size and time.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace mxlane::qrunner::http {

// What a request is reduced to: the handler sees no more than this.
struct Request {
    std::string method;  // "GET", "POST", ...
    std::string target;  // "/u/TOKEN" (the query string cut off)
    std::string body;    // at most kMaxBody bytes
};

struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::map<std::string, std::string> fields;  // more header fields (Allow, Cache-Control, ...)
};

// A request bigger than these, or slower than kRequestTimeout, gets 413 / 431
// or a closed connection; a connection serves kMaxRequests at most.
constexpr std::size_t kMaxBody = 16 * 1024;
constexpr std::size_t kMaxHeader = 8 * 1024;
constexpr int kRequestTimeoutSeconds = 10;
constexpr int kMaxRequests = 100;
constexpr std::size_t kMaxConnections = 256;

// "HOST:PORT", "[IPV6]:PORT": the endpoint to listen on. Throws
// std::invalid_argument "http_listen: ..." when it is not one.
boost::asio::ip::tcp::endpoint parse_listen(const std::string& text);

// A listening socket for http_listen, made before the process gives up root
// (a port below 1024 needs it). Throws std::runtime_error "http_listen: ...".
int listen_socket(const boost::asio::ip::tcp::endpoint& ep);

// Serves HTTP/1.1 on a listening socket. Handlers run on a thread of their own
// (they may use the store), never on the event loop.
class Server {
public:
    using Handler = std::function<Response(const Request&)>;

    Server(boost::asio::io_context& io, int listening_fd, Handler handler);
    ~Server();
    void start();
    void stop();  // no new connections; those open end at their next read

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace mxlane::qrunner::http
