// message_context: one message being received: envelope, header fields, body (spilled to a file when large).
#pragma once
#include <atomic>
#include <cstddef>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "libshared/loop_token.hpp"
#include "milter/intake_policy.hpp"

namespace mxlane::milter {

// Bodies beyond this many bytes go to a file under queue_directory/tmp.
constexpr std::size_t kSpillBytes = 1024 * 1024;

class MessageContext {
public:
    // spill_dir: where a large text goes (created when first needed);
    // size_limit: message_size_limit, in bytes of stored text.
    MessageContext(std::string spill_dir, std::size_t size_limit);
    MessageContext(const MessageContext&) = delete;
    MessageContext& operator=(const MessageContext&) = delete;
    ~MessageContext();

    // The messages this process is receiving now (their contexts), this one among them: the
    // store gathers the commits of many concurrent intakes into one flush.
    static unsigned in_progress() { return alive_.load(std::memory_order_relaxed); }

    // ---- envelope
    // argv as libmilter gives it: the address, then ESMTP parameters.
    void set_sender(char** argv);
    void add_recipient(std::string_view address);
    void set_login(std::string_view login) { login_ = login; }

    const std::string& sender() const { return sender_; }
    const std::string& mail_params() const { return mail_params_; }
    const std::string& login() const { return login_; }
    // Whose job names these are: the SASL login, else the envelope sender (lower-cased).
    // The same job name from two owners makes two jobs.
    std::string job_owner() const;
    const std::vector<std::string>& recipients() const { return recipients_; }
    bool smtputf8() const { return smtputf8_; }
    bool eight_bit() const { return eight_bit_; }

    // ---- what the intake policy knows
    IntakeFacts facts;
    JobKeyFields key_fields;              // the header fields that can name the job
    std::string pool;                     // from pool_header; empty: default_pool
    std::vector<std::string> loop_tokens; // values of every loop header seen
    bool sent_by_us = false;              // carries this host's mxlane Received: line

    // ---- content, stored as the recipients should receive it, CRLF line ends
    // One header field as "Name: value"; has_leading_space: the value kept its
    // own white space after the colon (SMFIP_HDR_LEADSPC). Folding is kept.
    void add_header(std::string_view name, std::string_view value, bool has_leading_space);
    // At the end of the headers, with the MTA's queue id: header fields the MTA
    // inserted for ones the client left out are stored but do not count against
    // message_size_limit, which is about what the client sent. Postfix's cleanup
    // appends them after the client's fields, led by a Message-Id holding its
    // queue id ("<20261202073519.2B102A74822@mta.example>"), then Date, From...
    void discount_mta_fields(std::string_view queue_id);
    void end_of_headers();
    void add_body(std::string_view chunk);
    // From now on the body is digested too (BodyDigest), for a relay token's check.
    void start_body_digest();
    // The digest of the body so far ("" when not started); ends the digest.
    std::string body_digest();

    std::size_t size() const { return size_; }
    // What the client sent, as far as the milter can tell: size() less the fields the MTA inserted.
    std::size_t client_size() const { return size_ - mta_bytes_; }
    bool too_large() const { return client_size() > size_limit_; }
    std::size_t size_limit() const { return size_limit_; }

    // The stored text from its first byte; valid until the context goes away.
    // Throws std::runtime_error when a spill file failed.
    std::istream& text();

private:
    static std::atomic<unsigned> alive_;
    void append(std::string_view bytes);
    void spill();

    std::string spill_dir_;
    std::size_t size_limit_;
    std::string sender_, mail_params_, login_;
    std::vector<std::string> recipients_;
    bool smtputf8_ = false, eight_bit_ = false;

    std::size_t size_ = 0;
    std::size_t mta_bytes_ = 0;       // header fields the MTA inserted
    struct Field {
        std::string name;             // lower case
        std::string message_id;       // the value, for Message-Id only
        std::size_t bytes = 0;
    };
    std::vector<Field> fields_;       // the stored header fields, in order
    std::unique_ptr<BodyDigest> digest_;  // the body's, when a relay token is to be checked
    std::string mem_;                 // the text while it is small
    std::unique_ptr<std::fstream> file_;  // the text once spilled (already unlinked)
    std::unique_ptr<std::istringstream> mem_stream_;
};

// ESMTP MAIL parameters worth keeping for delivery (BODY, SMTPUTF8, RET,
// ENVID), space-separated; SIZE and AUTH describe the original hop only.
std::string kept_mail_params(const std::vector<std::string>& params, bool& eight_bit, bool& smtputf8);

}  // namespace mxlane::milter
