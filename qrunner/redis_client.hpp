// redis_client: one connection to Redis on the event loop (plain or TLS), pipelined, reconnecting with backoff.
#pragma once
#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mxlane::qrunner {

// shared_state = redis://HOST:PORT/DB or rediss://HOST:PORT/DB (TLS).
struct RedisUrl {
    bool tls = false;
    std::string host;
    int port = 6379;
    int db = 0;
    std::string password;  // from shared_state_password_file, never in the URL
    std::string ca_file;   // rediss://: shared_state_tls_CAfile (empty: the system's CAs)
    // Throws std::invalid_argument with the reason.
    static RedisUrl parse(std::string_view url);
    std::string label() const;  // the URL without the password
};

struct RedisReply {
    enum class Type { nil, integer, string, status, error, array };
    Type type = Type::nil;
    long long integer = 0;
    std::string str;
    std::vector<RedisReply> elements;
    bool error() const { return type == Type::error; }
    // An integer reply, or a string one holding a number (Lua returns either).
    long long number() const;
};

// Delay before the n-th reconnect attempt in a row (from 0): 100 ms doubling to 10 s.
std::chrono::milliseconds reconnect_delay(int attempt);

// Commands are written in order and answered in order (Redis pipelining). A
// command that gets no answer - not connected, connection lost, or no reply
// within `timeout` (the connection is then dropped as slow) - gets nullopt:
// the caller goes on without Redis, nothing waits for it. Everything runs on
// the executor given; command() may be called from any thread.
class RedisClient {
public:
    using Callback = std::function<void(std::optional<RedisReply>)>;
    RedisClient(boost::asio::any_io_executor ex, RedisUrl url, std::chrono::milliseconds timeout);
    ~RedisClient();
    RedisClient(const RedisClient&) = delete;
    RedisClient& operator=(const RedisClient&) = delete;

    // Called on the executor when the connection comes up (true) or goes (false).
    void on_state(std::function<void(bool up)> f);
    // A subscriber connection: after every (re)connect it subscribes to
    // `channel` (and any other given); each message's payload goes to `f`. Call before start().
    void subscribe(std::string channel, std::function<void(const std::string&)> f);
    void start();
    void stop();
    void command(std::vector<std::string> args, Callback done);
    bool up() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace mxlane::qrunner
