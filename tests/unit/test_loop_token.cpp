// test_loop_token: relay tokens: made and checked with loop.key, forged, stale, malformed; the key file itself.
#include <cppunit/extensions/HelperMacros.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "libshared/loop_token.hpp"
#include "tests/unit/temp_dir.hpp"

using namespace mxlane;

namespace {
std::string digest_of(std::string_view body) {
    BodyDigest d;
    d.add(body);
    return d.hex();
}

// The transaction a token is made for in these tests.
LoopBinding bound() { return {"news@shop.test", {"a@one.test", "b@two.test"}, digest_of("Hello.\r\n")}; }
}  // namespace

class LoopTokenTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(LoopTokenTest);
    CPPUNIT_TEST(round_trip);
    CPPUNIT_TEST(forged_and_stale);
    CPPUNIT_TEST(malformed);
    CPPUNIT_TEST(key_file);
    CPPUNIT_TEST(key_race);
    CPPUNIT_TEST(damaged_key);
    CPPUNIT_TEST(key_replaced_under_a_running_program);
    CPPUNIT_TEST(bound_to_envelope_and_body);
    CPPUNIT_TEST(body_digest);
    CPPUNIT_TEST_SUITE_END();

public:
    // A token copied into other mail is not valid there: other sender, other
    // recipients, other body. The same transaction seen another way is.
    void bound_to_envelope_and_body() {
        test::TempDir dir;
        const std::string t = loop_token_make_at(dir.path(), "J00002A", 17, 1700000000, bound());
        auto valid = [&](const LoopBinding& b) { return loop_token_valid_at(dir.path(), t, 3600, 1700000010, b); };
        CPPUNIT_ASSERT(valid(bound()));
        LoopBinding b = bound();
        b.sender = "NEWS@shop.TEST";
        std::swap(b.recipients[0], b.recipients[1]);
        b.recipients[0] = "B@Two.test";
        CPPUNIT_ASSERT(valid(b));  // case and order of addresses do not matter
        b = bound();
        b.sender = "other@shop.test";
        CPPUNIT_ASSERT(!valid(b));
        b = bound();
        b.recipients.push_back("c@three.test");
        CPPUNIT_ASSERT(!valid(b));
        b = bound();
        b.recipients.pop_back();
        CPPUNIT_ASSERT(!valid(b));
        b = bound();
        b.body_digest = digest_of("Cheap pills.\r\n");
        CPPUNIT_ASSERT(!valid(b));
        b = bound();
        b.recipients = {"a@one.test,b@two.test"};  // one address cannot pose as two
        CPPUNIT_ASSERT(!valid(b));
    }

    // White space does not count (line ends and re-wrapping on the way); every other byte does.
    void body_digest() {
        const std::string whole = digest_of("Hello there,\r\nline two\r\n");
        CPPUNIT_ASSERT_EQUAL(std::size_t(64), whole.size());
        CPPUNIT_ASSERT_EQUAL(whole, digest_of("Hello there,\nline two\n"));
        CPPUNIT_ASSERT_EQUAL(whole, digest_of("Hello\r\n there,\r\nline two"));
        BodyDigest chunks;
        for (std::string_view c : {"Hel", "lo th", "ere,\r", "\nline", " two\r\n"}) chunks.add(c);
        CPPUNIT_ASSERT_EQUAL(whole, chunks.hex());
        CPPUNIT_ASSERT(whole != digest_of("Hello there,\r\nline tw0\r\n"));
        CPPUNIT_ASSERT(whole != digest_of(".Hello there,\r\nline two\r\n"));
        // The empty body's digest is SHA-256 of nothing.
        CPPUNIT_ASSERT_EQUAL(std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
                             digest_of("\r\n \t\r\n"));
    }

    void key_replaced_under_a_running_program() {
        test::TempDir dir;
        const std::string first = loop_key(dir.path());
        std::string t1 = loop_token_make_at(dir.path(), "J1", 1, 1700000000, bound());
        // Another program deletes the key and makes a new one (or an admin restores an old file).
        std::filesystem::remove(dir.path() + "/loop.key");
        {
            std::ofstream f(dir.path() + "/loop.key", std::ios::binary);
            f << std::string(32, 'k');
        }
        CPPUNIT_ASSERT_EQUAL(std::string(32, 'k'), loop_key(dir.path()));
        CPPUNIT_ASSERT(!loop_token_valid_at(dir.path(), t1, 3600, 1700000010, bound()));
        std::string t2 = loop_token_make_at(dir.path(), "J1", 1, 1700000000, bound());
        CPPUNIT_ASSERT(loop_token_valid_at(dir.path(), t2, 3600, 1700000010, bound()));
        // Deleted and not replaced: a new key is made, and used from then on.
        std::filesystem::remove(dir.path() + "/loop.key");
        const std::string third = loop_key(dir.path());
        CPPUNIT_ASSERT(third != std::string(32, 'k'));
        CPPUNIT_ASSERT(std::filesystem::exists(dir.path() + "/loop.key"));
        CPPUNIT_ASSERT(first != third);
    }

    void round_trip() {
        test::TempDir dir;
        std::string t = loop_token_make_at(dir.path(), "J00002A", 17, 1700000000, bound());
        CPPUNIT_ASSERT(t.starts_with("J00002A.17.1700000000."));
        CPPUNIT_ASSERT_EQUAL(std::size_t(22 + 64), t.size());
        CPPUNIT_ASSERT(loop_token_valid_at(dir.path(), t, 3600, 1700000010, bound()));
        CPPUNIT_ASSERT(loop_token_valid_at(dir.path(), " " + t + "\r\n", 3600, 1700000010, bound()));  // header white space
        CPPUNIT_ASSERT(loop_token_valid(dir.path(), loop_token_make(dir.path(), "J1", 1, bound()), 60, bound()));
        CPPUNIT_ASSERT_EQUAL(std::string(kLoopHeader), std::string("X-Mxlane-Relayed"));
    }

    void forged_and_stale() {
        test::TempDir a, b;
        std::string t = loop_token_make_at(a.path(), "J00002A", 17, 1700000000, bound());
        CPPUNIT_ASSERT(!loop_token_valid_at(b.path(), t, 3600, 1700000010, bound()));       // another queue's secret
        CPPUNIT_ASSERT(!loop_token_valid_at(a.path(), t, 3600, 1700003601, bound()));       // too old
        CPPUNIT_ASSERT(!loop_token_valid_at(a.path(), t, 3600, 1700000000 - 301, bound())); // from the future
        std::string moved = t;
        moved.replace(8, 2, "18");  // another message id under the same MAC
        CPPUNIT_ASSERT(!loop_token_valid_at(a.path(), moved, 3600, 1700000010, bound()));
        std::string flipped = t;
        flipped.back() = flipped.back() == '0' ? '1' : '0';
        CPPUNIT_ASSERT(!loop_token_valid_at(a.path(), flipped, 3600, 1700000010, bound()));
    }

    void malformed() {
        test::TempDir dir;
        for (const char* t : {"", "x", "J1.2.3.", "J1.2.notatime." "0000000000000000000000000000000000000000000000000000000000000000",
                              "J1.2.3.abc", "....."})
            CPPUNIT_ASSERT(!loop_token_valid_at(dir.path(), t, 3600, 3, bound()));
    }

    void key_file() {
        test::TempDir dir;
        std::string q = dir.file("queue");  // created when missing
        std::string k1 = loop_key(q);
        CPPUNIT_ASSERT_EQUAL(std::size_t(32), k1.size());
        struct stat st;
        CPPUNIT_ASSERT_EQUAL(0, ::stat((q + "/loop.key").c_str(), &st));
        CPPUNIT_ASSERT_EQUAL(0600, static_cast<int>(st.st_mode & 0777));
        CPPUNIT_ASSERT_EQUAL(k1, loop_key(q));
        // no temporary files left behind
        int files = 0;
        for (auto& e : std::filesystem::directory_iterator(q)) files += e.is_regular_file();
        CPPUNIT_ASSERT_EQUAL(1, files);
    }

    // Several processes creating the key at once agree on one key.
    void key_race() {
        test::TempDir dir;
        std::string q = dir.path();
        std::vector<pid_t> kids;
        for (int i = 0; i < 6; ++i) {
            pid_t pid = fork();
            if (pid == 0) {
                std::string t = loop_token_make_at(q, "J1", static_cast<std::uint64_t>(i), 1000, bound());
                std::ofstream(q + "/token." + std::to_string(i)) << t;
                _exit(0);
            }
            kids.push_back(pid);
        }
        for (pid_t pid : kids) {
            int status = 0;
            waitpid(pid, &status, 0);
            CPPUNIT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        for (int i = 0; i < 6; ++i) {
            std::string t;
            std::ifstream(q + "/token." + std::to_string(i)) >> t;
            CPPUNIT_ASSERT(loop_token_valid_at(q, t, 60, 1000, bound()));
        }
    }

    void damaged_key() {
        test::TempDir dir;
        dir.write("loop.key", "short");
        CPPUNIT_ASSERT_THROW(loop_key(dir.path()), LoopKeyError);
        CPPUNIT_ASSERT_THROW(loop_token_valid_at(dir.path(), "J1.2.3." + std::string(64, '0'), 60, 3, bound()), LoopKeyError);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(LoopTokenTest);
