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

// libspf2's DNS layer interface: every question it has goes through hook (a DnsClient).
SPF_dns_rr_t* lookup(SPF_dns_server_t* layer, const char* domain, ns_type type, int) {
    auto* dns = static_cast<DnsClient*>(layer->hook);
    Records found;
    const bool asked = type == ns_t_a || type == ns_t_aaaa || type == ns_t_txt || type == ns_t_ptr || type == ns_t_mx;
    try {
        if (asked) found = dns->lookup(domain, type);
        else found.status = Lookup::no_data;  // type 99 (SPF): obsolete, RFC 7208 3.1
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
    layer.hook = &dns;
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
    SPF_result_t result = SPF_response_result(response.get());
    if (err == SPF_E_NOT_SPF) result = SPF_RESULT_NONE;
    else if (err == SPF_E_DNS_ERROR && result == SPF_RESULT_INVALID) result = SPF_RESULT_TEMPERROR;
    else if (err != SPF_E_SUCCESS && (result == SPF_RESULT_INVALID || result == SPF_RESULT_NEUTRAL))
        result = SPF_RESULT_PERMERROR;
    return {result_name(result), detail_of(response.get(), err)};
}

}  // namespace mxlane::compliance
