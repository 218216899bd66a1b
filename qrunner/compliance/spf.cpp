// spf: RFC 7208 evaluation of a domain's SPF policy for one sending address (libspf2, asking mxlane's resolver).
#include "qrunner/compliance/spf.hpp"

extern "C" {
#include <arpa/inet.h>
#include <netdb.h>
#include <spf2/spf.h>
}

#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <strings.h>
#include <utility>

namespace mxlane::compliance {

namespace {

SPF_dns_stat_t herrno_of(Lookup status) {
    switch (status) {
    case Lookup::ok: return NETDB_SUCCESS;
    case Lookup::no_data: return NO_DATA;
    case Lookup::not_found: return HOST_NOT_FOUND;
    default: return TRY_AGAIN;
    }
}

// Fills one libspf2 answer slot; false when libspf2 has no memory for it.
bool put(SPF_dns_rr_t* rr, int i, ns_type type, const std::string& value) {
    if (type == ns_t_a || type == ns_t_aaaa) {
        const bool four = type == ns_t_a;
        if (SPF_dns_rr_buf_realloc(rr, i, four ? sizeof(in_addr) : sizeof(in6_addr)) != SPF_E_SUCCESS) return false;
        return inet_pton(four ? AF_INET : AF_INET6, value.c_str(), four ? static_cast<void*>(&rr->rr[i]->a)
                                                                          : static_cast<void*>(&rr->rr[i]->aaaa)) == 1;
    }
    if (SPF_dns_rr_buf_realloc(rr, i, value.size() + 1) != SPF_E_SUCCESS) return false;
    // txt, mx and ptr share the slot, sized above (the union declares char[1])
    std::memcpy(reinterpret_cast<char*>(rr->rr[i]), value.c_str(), value.size() + 1);
    return true;
}

// What the DNS layer learns while libspf2 evaluates one policy.
struct Evaluation {
    DnsClient* dns = nullptr;
    bool first_txt = true;     // the domain's own TXT question comes first
    bool has_record = false;   // ... and its answer held a v=spf1 record
    // RFC 7208 4.6.4: include, a, mx, ptr, exists and redirect may cause 10
    // DNS lookups in all. libspf2 counts them per record (an include starts
    // its count again), so they are counted here, by the questions: a TXT
    // after the first (include, redirect), an MX, an A or AAAA of a name no
    // MX or PTR answer gave (those are limited apart, 4.6.4's second rule).
    // PTR questions are not counted: libspf2 asks them for its own comments too.
    int terms = 0;
    bool over_limit = false;
    std::set<std::string> exempt;
};

bool spf_record(const std::string& txt) {
    return txt.size() >= 6 && strncasecmp(txt.c_str(), "v=spf1", 6) == 0 && (txt.size() == 6 || txt[6] == ' ');
}

// Counts the question; false when it is over the limit (then not asked).
bool count(Evaluation& e, const std::string& name, ns_type type) {
    if (type == ns_t_txt && std::exchange(e.first_txt, false)) return true;
    if (type == ns_t_ptr || ((type == ns_t_a || type == ns_t_aaaa) && e.exempt.contains(name))) return true;
    if (++e.terms > 10) e.over_limit = true;
    return !e.over_limit;
}

void learn(Evaluation& e, ns_type type, const Records& found) {
    if (type == ns_t_txt && !e.has_record && e.terms == 0)
        for (const auto& t : found.values) e.has_record = e.has_record || spf_record(t);
    if (type == ns_t_mx || type == ns_t_ptr)
        for (const auto& n : found.values) e.exempt.insert(n);
}

// libspf2's DNS layer interface: every question it has goes through hook (an Evaluation's DnsClient).
SPF_dns_rr_t* lookup(SPF_dns_server_t* layer, const char* domain, ns_type type, int) {
    auto& e = *static_cast<Evaluation*>(layer->hook);
    Records found;
    const bool asked = type == ns_t_a || type == ns_t_aaaa || type == ns_t_txt || type == ns_t_ptr || type == ns_t_mx;
    try {
        if (asked && count(e, domain, type)) {
            found = e.dns->lookup(domain, type);
            learn(e, type, found);
        } else {
            found.status = Lookup::no_data;  // type 99 (SPF): obsolete, RFC 7208 3.1; or over the limit
        }
    } catch (const std::exception&) {
        found.status = Lookup::error;
    }
    SPF_dns_rr_t* rr = SPF_dns_rr_new_init(layer, domain, type, static_cast<int>(found.ttl), herrno_of(found.status));
    if (!rr) return nullptr;
    for (const auto& value : found.values) {
        if (!put(rr, rr->num_rr, type, value)) break;
        ++rr->num_rr;
    }
    return rr;
}

// libspf2's notes go nowhere: the verdict and its detail say what matters.
void quiet(const char*, int, const char*) {}

const char* result_name(SPF_result_t r) {
    switch (r) {
    case SPF_RESULT_PASS: return "pass";
    case SPF_RESULT_FAIL: return "fail";
    case SPF_RESULT_SOFTFAIL: return "softfail";
    case SPF_RESULT_NEUTRAL: return "neutral";
    case SPF_RESULT_NONE: return "none";
    case SPF_RESULT_TEMPERROR: return "temperror";
    default: return "permerror";
    }
}

struct ServerFree {
    void operator()(SPF_server_t* s) const { SPF_server_free(s); }
};
struct RequestFree {
    void operator()(SPF_request_t* r) const { SPF_request_free(r); }
};
struct ResponseFree {
    void operator()(SPF_response_t* r) const { SPF_response_free(r); }
};

std::string detail_of(SPF_response_t* response, SPF_errcode_t err) {
    for (int i = 0; i < SPF_response_messages(response); ++i)
        if (const char* m = SPF_error_message(SPF_response_message(response, i)); m && *m) return m;
    if (err != SPF_E_SUCCESS) return SPF_strerror(err);
    if (const char* c = SPF_response_get_header_comment(response); c && *c) return c;
    return {};
}

}  // namespace

SpfVerdict spf_evaluate(DnsClient& dns, const std::string& domain, const std::string& address) {
    static std::once_flag handlers;
    std::call_once(handlers, [] {
        SPF_warning_handler = quiet;
        SPF_info_handler = quiet;
        SPF_debug_handler = quiet;
    });
    SPF_dns_server_t layer{};
    layer.lookup = lookup;
    layer.name = "mxlane";
    Evaluation evaluation;
    evaluation.dns = &dns;
    layer.hook = &evaluation;
    std::unique_ptr<SPF_server_t, ServerFree> server(SPF_server_new_dns(&layer, 0));
    if (!server) return {"temperror", "libspf2 has no memory"};
    std::unique_ptr<SPF_request_t, RequestFree> request(SPF_request_new(server.get()));
    if (!request) return {"temperror", "libspf2 has no memory"};
    const bool v4 = address.find(':') == std::string::npos;
    if ((v4 ? SPF_request_set_ipv4_str(request.get(), address.c_str())
            : SPF_request_set_ipv6_str(request.get(), address.c_str())) != SPF_E_SUCCESS)
        return {"permerror", "not an IP address: " + address};
    if (SPF_request_set_env_from(request.get(), ("postmaster@" + domain).c_str()) != 0)
        return {"permerror", "not a domain name: " + domain};
    // libspf2's SPF_request_query_mailfrom lets any loopback address pass
    // without reading the record; a check must read it (and the tests send
    // from 127.0.0.x), so the record is fetched and interpreted here.
    request->cur_dom = request->env_from_dp;
    std::unique_ptr<SPF_response_t, ResponseFree> response(SPF_response_new(request.get()));
    if (!response) return {"temperror", "libspf2 has no memory"};
    SPF_record_t* record = nullptr;
    SPF_errcode_t err = SPF_server_get_record(server.get(), request.get(), response.get(), &record);
    if (err == SPF_E_SUCCESS && record) {
        response->spf_record_exp = record;
        err = SPF_record_interpret(record, request.get(), response.get(), 0);
        response->spf_record_exp = nullptr;
        SPF_record_free(record);
    } else if (record) {
        SPF_record_free(record);
    }
    if (evaluation.over_limit) return {"permerror", "more than 10 DNS-querying terms (RFC 7208 4.6.4)"};
    SPF_result_t result = SPF_response_result(response.get());
    // A v=spf1 record that does not compile is a permerror (RFC 7208 4.6), not "no record".
    if (err == SPF_E_NOT_SPF && evaluation.has_record) return {"permerror", detail_of(response.get(), err)};
    if (err == SPF_E_NOT_SPF) result = SPF_RESULT_NONE;
    else if (err == SPF_E_DNS_ERROR && result == SPF_RESULT_INVALID) result = SPF_RESULT_TEMPERROR;
    else if (err != SPF_E_SUCCESS && (result == SPF_RESULT_INVALID || result == SPF_RESULT_NEUTRAL))
        result = SPF_RESULT_PERMERROR;
    return {result_name(result), detail_of(response.get(), err)};
}

}  // namespace mxlane::compliance
