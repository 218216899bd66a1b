// queue_store_jobs: which job a message joins: named jobs, keyed jobs open until idle, and their close.
#include "libshared/store/codec.hpp"
#include "libshared/store/queue_store.hpp"
#include "libshared/store/scan.hpp"

namespace mxlane::store {

using namespace detail;

std::int64_t QueueStore::last_message_time(DbTxn* txn, const Job& job) {
    // Read committed: the pages of the messages stay free for the intakes beside this one.
    CursorGuard g;
    env_->messages().cursor(txn, &g.c, DB_READ_COMMITTED);
    OwnedDbt key(message_key(job.id + 1, 0)), data;
    int rc = g.c->get(&key, &data, DB_SET_RANGE);
    rc = rc == 0 ? g.c->get(&key, &data, DB_PREV) : g.c->get(&key, &data, DB_LAST);
    if (rc != 0) return job.created;
    std::string k = str(key);
    if (k.size() < 16 || get_u64(k, 0) != job.id) return job.created;
    return Message::decode(job.id, get_u64(k, 8), str(data)).created;
}

bool QueueStore::takes_messages(DbTxn* txn, const Job& job, std::int64_t now) {
    if (job.state == JobState::done || job.closed) return false;
    // A message committed here is a lower bound of the job's last one: when it is recent
    // enough, so is the last. (close_idle_jobs looks again under its write lock.)
    return job.open_ms == 0 || now - recent_intake(job.id) <= job.open_ms ||
           now - last_message_time(txn, job) <= job.open_ms;
}

std::int64_t QueueStore::recent_intake(std::uint64_t job_id) {
    std::lock_guard lock(recent_mu_);
    auto it = recent_.find(job_id);
    return it == recent_.end() ? 0 : it->second;
}

void QueueStore::note_intake(std::uint64_t job_id, std::int64_t when) {
    constexpr std::size_t kRecentJobs = 1024;  // campaigns taking mail at once, far more than enough
    std::lock_guard lock(recent_mu_);
    if (recent_.size() >= kRecentJobs && !recent_.contains(job_id)) recent_.erase(recent_.begin());
    auto& t = recent_[job_id];
    t = std::max(t, when);
}

namespace {

// job_names: name -> job id, and (keyed jobs) how many jobs the name has had.
struct NameRecord {
    std::uint64_t job_id = 0;
    std::uint32_t jobs = 1;
};

NameRecord decode_name(const std::string& data) {
    NameRecord r{get_u64(data, 0), 1};
    if (data.size() >= 12) r.jobs = Decoder(std::string_view(data).substr(8)).u32();
    return r;
}

std::string encode_name(const NameRecord& r) {
    std::string out = job_key(r.job_id);
    put_u32(out, r.jobs);
    return out;
}

}  // namespace

Job QueueStore::find_or_create_job(DbTxn* txn, const Intake& in, std::int64_t now, bool& created) {
    created = false;
    // Names are per owner: two senders using one name get two jobs.
    std::string key = in.job_owner.empty() ? in.job_name : in.job_owner + '\0' + in.job_name;
    NameRecord name;
    name.jobs = 0;
    if (!in.job_name.empty()) {
        // Shared locks: the intakes of one campaign read its name and job side by side.
        // A closed, idle or done job is never reopened: the name then goes to a new job.
        if (auto rec = env_->get(env_->job_names(), txn, key)) {
            name = decode_name(*rec);
            if (auto job = load_job(txn, name.job_id); job && takes_messages(txn, *job, now)) return *job;
        }
        // Write-locked only to start a job: two intakes that both found the name without
        // an open job deadlock here, and the one retried joins the other's new job.
        env_->get(env_->job_names(), txn, key, DB_RMW);
    }
    Job j;
    j.id = env_->next_job_id();
    j.name = in.job_name;
    if (in.open_ms > 0 && name.jobs > 0) j.name += " #" + std::to_string(name.jobs + 1);
    j.sender = in.sender;
    j.created = now;
    j.state = in.job_state;
    j.open_ms = in.job_name.empty() ? 0 : in.open_ms;
    save_job(txn, j);
    if (!in.job_name.empty())
        env_->put(env_->job_names(), txn, key, encode_name(NameRecord{j.id, in.open_ms > 0 ? name.jobs + 1 : 1}));
    created = true;
    return j;
}

bool QueueStore::finished(DbTxn* txn, Job& job) {
    bool in_flight = false;
    scan(env_->inflight(), txn, job_key(job.id), job_key(job.id), [&](const std::string&, const std::string&) {
        in_flight = true;
        return false;
    });
    if (in_flight) return false;
    sum_counts(txn, job);
    return job.pending() == 0;
}

std::vector<std::uint64_t> QueueStore::close_idle_jobs(std::int64_t now) {
    // Candidates from a read without locks; each is then closed in a transaction of its
    // own that write-locks the job first, so that an intake reading it to join either
    // comes before (its message then counts as the last) or sees it closed.
    std::vector<std::uint64_t> open;
    env_->transact([&](DbTxn* txn) {
        open.clear();
        scan(env_->jobs(), txn, std::string(), std::string(), [&](const std::string& k, const std::string& d) {
            Job j = Job::decode(get_u64(k, 0), d);
            if (j.open_ms && !j.closed && j.created + j.open_ms < now) open.push_back(j.id);
            return true;
        }, DB_READ_COMMITTED);
    });
    std::vector<std::uint64_t> done;
    for (auto id : open) {
        bool now_done = env_->transact([&](DbTxn* txn) {
            auto job = load_job(txn, id, DB_RMW);
            if (!job || !job->open_ms || job->closed || now - last_message_time(txn, *job) <= job->open_ms)
                return false;
            job->closed = true;
            const bool ends = job->state == JobState::active && finished(txn, *job);
            if (ends) job->state = JobState::done;
            save_job(txn, *job);
            return ends;
        }, Commit::write_nosync);
        if (now_done) done.push_back(id);
    }
    return done;
}

}  // namespace mxlane::store
