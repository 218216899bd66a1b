// json: the JSON documents mxlane writes, built with Boost.JSON and always valid UTF-8.
#pragma once
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <string>

namespace mxlane::json {

using boost::json::array;
using boost::json::object;
using boost::json::value;

// The document as compact JSON text. Every string in it, key or value, is made
// valid UTF-8 first (ill-formed bytes become U+FFFD, see valid_utf8()), so that text
// a peer sent in any encoding (a Latin-1 SMTP reply, a job name) never makes the
// document unreadable; control characters are escaped by the serializer.
std::string serialize(value doc);

}  // namespace mxlane::json
