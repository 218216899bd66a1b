// request: how the HTTP server reads a request: Beast's parser under mxlane's limits, and what the handler sees of it.
#pragma once
// GCC 12 with the sanitizers (--enable-sanitizers) sees a boost::optional in
// Beast's request parser as maybe uninitialized (a false positive, under -Werror).
// (clang, which builds the fuzz targets, has no such warning.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <optional>

#include "qrunner/http/server.hpp"

namespace mxlane::qrunner::http {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// The parser's bounds: kMaxHeader of header, kMaxBody of body.
void set_limits(RequestParser& parser);

// The answer to a request the parser refused for its size (413, 431); nullopt
// for any other error (the connection is closed without an answer).
std::optional<Response> refusal(const boost::system::error_code& ec);

// What the handler sees of a parsed request: the method, the target without
// its query string, the body.
Request to_request(const RequestParser::value_type& req);

}  // namespace mxlane::qrunner::http
