// fuzz target http_request: any bytes on http_listen are read under the server's limits and answered by the site without harm; only a POST unsubscribes.
#include <sstream>
#include <string>

#include "fuzz/fuzz_input.hpp"
#include "libshared/recipient_token.hpp"
#include "libshared/store/queue_store.hpp"
#include "qrunner/http/request.hpp"
#include "qrunner/http/site.hpp"

using namespace mxlane;

namespace {

struct World {
    std::string dir = fuzz::temp_queue_dir("mxlane-fuzz-http");
    store::QueueStore store{dir};
    std::string token;  // of the one recipient in the queue
    qrunner::http::Site site{store, dir, [] { return std::string("# destinations\n"); }};
    World() {
        store::Intake in;
        in.job_name = "fuzz";
        in.sender = "news@shop.test";
        in.recipients.push_back({"ann@a.test", {}});
        std::istringstream text("Subject: t\n\nhi\n");
        auto added = store.add_message(in, text, 1000);
        token = recipient_token_make(dir, {added.job_id, 1});
    }
};

// "@TOKEN@" in the input stands for the valid token, so that the fuzzer reaches
// the unsubscribe page and the POST with a recipient that exists.
std::string with_token(std::string_view input, const std::string& token) {
    std::string out(input);
    for (std::size_t at; (at = out.find("@TOKEN@")) != std::string::npos;) out.replace(at, 7, token);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static World w;
    const std::string bytes = with_token(fuzz::as_text(data, size), w.token);
    qrunner::http::RequestParser parser;
    qrunner::http::set_limits(parser);
    boost::system::error_code ec;
    // Fed in pieces, as the socket delivers them; what the parser leaves is offered again with more.
    std::size_t at = 0, end = 0;
    while (!parser.is_done()) {
        if (end < bytes.size()) end = std::min(bytes.size(), end + 1 + (static_cast<unsigned char>(bytes[end]) & 0x3f));
        const std::size_t used = parser.put(boost::asio::const_buffer(bytes.data() + at, end - at), ec);
        at += used;
        if (ec == boost::beast::http::error::need_more) ec = {};
        if (ec || (used == 0 && end == bytes.size())) break;
    }
    if (ec) {
        const auto r = qrunner::http::refusal(ec);
        if (r && r->status != 413 && r->status != 431) __builtin_trap();
        return 0;
    }
    if (!parser.is_done()) return 0;
    const auto req = qrunner::http::to_request(parser.get());
    if (req.target.find('?') != std::string::npos || req.body.size() > qrunner::http::kMaxBody) __builtin_trap();
    const bool before = w.store.is_suppressed("ann@a.test");
    const auto res = w.site(req);
    const bool after = w.store.is_suppressed("ann@a.test");
    switch (res.status) {
        case 200: case 404: case 405: break;
        default: __builtin_trap();
    }
    // A link scanner's GET (or any other method) never unsubscribes anybody.
    if (!before && after && req.method != "POST") __builtin_trap();
    if (after) w.store.unsuppress("ann@a.test");
    return 0;
}
