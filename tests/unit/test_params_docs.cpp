// test_params_docs: conf/mxlane.conf and the README's table stay in step with the parameter table.
#include <cppunit/extensions/HelperMacros.h>

#include <fstream>
#include <sstream>

#include "libshared/params.hpp"

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

class ParamsDocsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ParamsDocsTest);
    CPPUNIT_TEST(table_is_sane);
    CPPUNIT_TEST(sample_config_lists_every_parameter);
    CPPUNIT_TEST(readme_lists_every_parameter);
    CPPUNIT_TEST_SUITE_END();

public:
    void table_is_sane() {
        for (const auto& def : mxlane::param_table()) {
            CPPUNIT_ASSERT_MESSAGE(std::string(def.name), !def.doc.empty());
            if (def.default_value.find('$') == std::string_view::npos)
                CPPUNIT_ASSERT_MESSAGE(std::string(def.name),
                                       mxlane::check_param_value(def, def.default_value).empty());
        }
        CPPUNIT_ASSERT(mxlane::find_param("queue_directory"));
        CPPUNIT_ASSERT(!mxlane::find_param("queue_dir"));
    }

    void sample_config_lists_every_parameter() {
        std::string conf = slurp(MXLANE_SRCDIR "/conf/mxlane.conf");
        CPPUNIT_ASSERT(!conf.empty());
        for (const auto& def : mxlane::param_table()) {
            std::string line = "#" + std::string(def.name) + " = " + std::string(def.default_value);
            if (def.default_value.empty()) line.pop_back();
            CPPUNIT_ASSERT_MESSAGE("conf/mxlane.conf lacks: " + line, conf.find(line + "\n") != std::string::npos);
        }
    }

    void readme_lists_every_parameter() {
        std::string readme = slurp(MXLANE_SRCDIR "/README.md");
        for (const auto& def : mxlane::param_table()) {
            std::string cell = "| `" + std::string(def.name) + "` |";
            CPPUNIT_ASSERT_MESSAGE("README.md parameter table lacks " + std::string(def.name),
                                   readme.find(cell) != std::string::npos);
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ParamsDocsTest);
