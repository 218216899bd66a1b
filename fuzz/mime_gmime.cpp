// fuzz target mime_gmime: mxlane's MIME encoders and renderer checked against GMime's decoders and parser (an independent implementation).
#include <gmime/gmime.h>

#include "fuzz/fuzz_input.hpp"
#include "libshared/mime_codec.hpp"
#include "libshared/render_plan.hpp"

using namespace mxlane;

namespace {

std::string gmime_decode(const std::string& in, GMimeContentEncoding encoding) {
    GMimeEncoding state;
    g_mime_encoding_init_decode(&state, encoding);
    std::string out(g_mime_encoding_outlen(&state, in.size()) + 16, '\0');
    std::size_t n = g_mime_encoding_flush(&state, in.data(), in.size(), out.data());
    out.resize(n);
    return out;
}

// Valid UTF-8 without control characters but the line breaks (what a list holds).
bool plain_utf8(std::string_view s) {
    if (!g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr)) return false;
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x20 && c != '\r' && c != '\n') return false;
    return true;
}

std::string breaks(std::string_view v, const char* as) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\r' || v[i] == '\n') {
            if (v[i] == '\r' && i + 1 < v.size() && v[i + 1] == '\n' && std::string_view(as) == "\r\n") ++i;
            out += as;
        } else {
            out += v[i];
        }
    }
    return out;
}

struct Parts {
    std::vector<std::string> texts;
};

void collect(GMimeObject*, GMimeObject* part, gpointer data) {
    if (!GMIME_IS_TEXT_PART(part)) return;
    char* text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
    static_cast<Parts*>(data)->texts.emplace_back(text ? text : "");
    g_free(text);
}

const std::string kTemplate =
    "From: Shop <news@shop.test>\r\nTo: {{name}} <{{address}}>\r\nSubject: Hallo {{name}}, your offer\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    "Hallo {{na=\r\nme}}, link: {{link}}\r\n--b1\r\n"
    "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
    mime::base64_encode("<p>{{name}}</p><a href=\"{{link}}\">x</a>") + "\r\n--b1--\r\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static bool init = (g_mime_init(), true);
    (void)init;
    auto parts = fuzz::split_nul(data, size, 2);
    std::string v1(parts[0]), v2(parts.size() > 1 ? parts[1] : "");

    if (gmime_decode(mime::qp_encode(v1), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) != v1) __builtin_trap();
    if (gmime_decode(mime::base64_encode(v1), GMIME_CONTENT_ENCODING_BASE64) != v1) __builtin_trap();
    if (!plain_utf8(v1) || !plain_utf8(v2)) return 0;

    std::string joined;
    for (const auto& w : mime::encode_words(breaks(v1, " "))) joined += (joined.empty() ? "" : " ") + w;
    char* decoded = g_mime_utils_header_decode_text(nullptr, joined.c_str());
    bool same = decoded && breaks(v1, " ") == decoded;
    g_free(decoded);
    if (!same) __builtin_trap();

    // The two-part template rendered, parsed by GMime: the Subject and each part decode to the values.
    std::string out = mime::render_message(mime::RenderPlan(kTemplate), {"name", "link"}, {v1, v2}, "a@b.test", false);
    GMimeStream* stream = g_mime_stream_mem_new_with_buffer(out.data(), out.size());
    GMimeParser* parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage* msg = g_mime_parser_construct_message(parser, nullptr);
    if (!msg) __builtin_trap();
    const char* subject = g_mime_message_get_subject(msg);
    std::string want_subject = "Hallo " + breaks(v1, " ") + ", your offer";
    if (!subject || want_subject != subject) __builtin_trap();
    Parts got;
    g_mime_message_foreach(msg, collect, &got);
    std::string name = breaks(v1, "\r\n"), link = breaks(v2, "\r\n");
    if (got.texts.size() != 2 || got.texts[0] != "Hallo " + name + ", link: " + link ||
        got.texts[1] != "<p>" + name + "</p><a href=\"" + link + "\">x</a>")
        __builtin_trap();
    g_object_unref(msg);
    g_object_unref(parser);
    g_object_unref(stream);
    return 0;
}
