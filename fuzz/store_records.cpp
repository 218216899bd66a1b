// fuzz target store_records: any bytes read back from the store decode to a usable record or throw CodecError.
#include "fuzz/fuzz_input.hpp"
#include "libshared/store/codec.hpp"
#include "libshared/store/records.hpp"

using namespace mxlane::store;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // key NUL data: the key as the recipients table has it, the data as any table has it.
    auto parts = mxlane::fuzz::split_nul(data, size, 2);
    std::string_view key = parts[0], value = parts.size() > 1 ? parts[1] : parts[0];
    try {
        Recipient r = Recipient::decode(key, value);
        // What mxlanectl and the scheduler do with a recipient they read.
        (void)state_name(r.state);
        (void)is_final(r.state);
        if (r.encode() != value.substr(0, r.encode().size())) __builtin_trap();
        (void)r.key();
    } catch (const CodecError&) {
    }
    (void)Recipient::due_key(key, value);
    try {
        Job j = Job::decode(1, value);
        (void)job_state_name(j.state);
        (void)format_job_id(j.id);
    } catch (const CodecError&) {
    }
    try {
        Message m = Message::decode(1, 2, value);
        (void)m.encode();
    } catch (const CodecError&) {
    }
    try {
        MessageCounts c = MessageCounts::decode(value);
        (void)c.encode();
    } catch (const CodecError&) {
    }
    try {
        // A suppression list entry, with or without its job (older records have none).
        Suppression sup = Suppression::decode(key, value);
        if (sup.encode() != value.substr(0, sup.encode().size())) __builtin_trap();
    } catch (const CodecError&) {
    }
    (void)parse_job_id(mxlane::fuzz::as_text(data, size));
    return 0;
}
