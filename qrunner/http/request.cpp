// request: how the HTTP server reads a request: Beast's parser under mxlane's limits, and what the handler sees of it.
#include "qrunner/http/request.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // see request.hpp
#endif
#include <boost/beast/http/error.hpp>

namespace mxlane::qrunner::http {

namespace bhttp = boost::beast::http;

void set_limits(RequestParser& parser) {
    parser.header_limit(kMaxHeader);
    parser.body_limit(kMaxBody);
}

std::optional<Response> refusal(const boost::system::error_code& ec) {
    if (ec == bhttp::error::body_limit) return Response{413, "text/plain; charset=utf-8", "request body too large\n", {}};
    if (ec == bhttp::error::header_limit)
        return Response{431, "text/plain; charset=utf-8", "request header too large\n", {}};
    return std::nullopt;
}

Request to_request(const RequestParser::value_type& req) {
    Request r;
    r.method = std::string(req.method_string());
    const std::string_view target = req.target();
    r.target = std::string(target.substr(0, target.find('?')));
    r.body = req.body();
    return r;
}

}  // namespace mxlane::qrunner::http
