// Host tests of the OOK code generator (src/MsgfloOok.h). The expected edges are written from the
// documented timing tables (rc-switch's protocol table; the Nexa/Proove description in
// rtl_433's proove.c and NewRemoteSwitch), from bit strings typed out here, never by asking the
// generator twice.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "MsgfloOok.h"

// Found by argument-dependent lookup from doctest's comparisons and messages.
namespace msgflo {
namespace ook {

struct Want {
  bool high;
  unsigned us;
};

bool operator==(const Edge& edge, const Want& want) {
  return edge.high == want.high && edge.us == want.us;
}

doctest::String toString(const Edge& edge) {
  char text[32];
  snprintf(text, sizeof text, "%s %u", edge.high ? "H" : "L", static_cast<unsigned>(edge.us));
  return text;
}

}  // namespace ook
}  // namespace msgflo

using namespace msgflo::ook;

namespace {

std::vector<Edge> all(const Code& code) {
  std::vector<Edge> edges;
  EdgeIterator iterator;
  iterator.start(code);
  Edge edge;
  while (iterator.next(edge)) edges.push_back(edge);
  return edges;
}

void expectEdges(const std::vector<Edge>& got, const std::vector<Want>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("edge " << i);
    CHECK(got[i] == want[i]);
  }
}

// PT2262/EV1527 as rc-switch protocol 1: T = 350 us, 0 = 1:3, 1 = 3:1, then the sync 1:31.
std::vector<Want> protocol1(const char* bits) {
  std::vector<Want> want;
  for (const char* b = bits; *b; ++b) {
    if (*b == '1') want.insert(want.end(), {{true, 1050}, {false, 350}});
    if (*b == '0') want.insert(want.end(), {{true, 350}, {false, 1050}});
  }
  want.insert(want.end(), {{true, 350}, {false, 10850}});
  return want;
}

// Nexa self-learning: T = 260 us; sync T + 10 T; a 1 is T,5T,T,T and a 0 T,T,T,5T; pause T + 40 T.
std::vector<Want> nexa(const char* bits) {
  std::vector<Want> want = {{true, 260}, {false, 2600}};
  for (const char* b = bits; *b; ++b) {
    if (*b == '1') want.insert(want.end(), {{true, 260}, {false, 1300}, {true, 260}, {false, 260}});
    if (*b == '0') want.insert(want.end(), {{true, 260}, {false, 260}, {true, 260}, {false, 1300}});
  }
  want.insert(want.end(), {{true, 260}, {false, 10400}});
  return want;
}

std::vector<Want> times(const std::vector<Want>& once, int repeats) {
  std::vector<Want> want;
  for (int i = 0; i < repeats; ++i) want.insert(want.end(), once.begin(), once.end());
  return want;
}

ParseError parse(const char* text, Code& code) {
  return parseCommand(reinterpret_cast<const uint8_t*>(text), strlen(text), code);
}

}  // namespace

TEST_CASE("rc-switch protocol 1: a 24-bit EV1527 code, 10 repeats") {
  Code code;
  REQUIRE(makeRcSwitch(code, 1, 0x5A5A5A, 24));
  CHECK(code.repeats == 10);
  CHECK(edgesPerRepeat(code) == 50);
  CHECK(edgeCount(code) == 500);
  expectEdges(all(code), times(protocol1("010110100101101001011010"), 10));
}

TEST_CASE("rc-switch protocol 1: rc-switch's own example 5393 in 24 bits, leading zeros sent") {
  Code code;
  REQUIRE(makeRcSwitch(code, 1, 5393, 24, 1));
  expectEdges(all(code), protocol1("000000000001010100010001"));
}

TEST_CASE("rc-switch protocols 2 to 6, every edge typed out") {
  Code code;
  // protocol 2: 650 us, sync 1:10, 0 = 1:2, 1 = 2:1; code 101
  REQUIRE(makeRcSwitch(code, 2, 0x5, 3, 1));
  expectEdges(all(code), {{true, 1300},
                          {false, 650},
                          {true, 650},
                          {false, 1300},
                          {true, 1300},
                          {false, 650},
                          {true, 650},
                          {false, 6500}});
  // protocol 3: 100 us, sync 30:71, 0 = 4:11, 1 = 9:6; code 01
  REQUIRE(makeRcSwitch(code, 3, 0x1, 2, 1));
  expectEdges(all(code),
              {{true, 400}, {false, 1100}, {true, 900}, {false, 600}, {true, 3000}, {false, 7100}});
  // protocol 4: 380 us, sync 1:6, 0 = 1:3, 1 = 3:1; code 1
  REQUIRE(makeRcSwitch(code, 4, 0x1, 1, 1));
  expectEdges(all(code), {{true, 1140}, {false, 380}, {true, 380}, {false, 2280}});
  // protocol 5: 500 us, sync 6:14, 0 = 1:2, 1 = 2:1; code 0
  REQUIRE(makeRcSwitch(code, 5, 0x0, 1, 1));
  expectEdges(all(code), {{true, 500}, {false, 1000}, {true, 3000}, {false, 7000}});
  // protocol 6 (HT6P20B): 450 us, sync 23:1, 0 = 1:2, 1 = 2:1, levels inverted; code 10
  REQUIRE(makeRcSwitch(code, 6, 0x2, 2, 1));
  expectEdges(all(code),
              {{false, 900}, {true, 450}, {false, 450}, {true, 900}, {false, 10350}, {true, 450}});
}

TEST_CASE("rc-switch: 32-bit codes and the top bit") {
  Code code;
  REQUIRE(makeRcSwitch(code, 1, 0x80000001UL, 32, 1));
  const std::vector<Edge> edges = all(code);
  REQUIRE(edges.size() == 66);
  CHECK(edges[0] == Want{true, 1050});
  CHECK(edges[2] == Want{true, 350});
  CHECK(edges[62] == Want{true, 1050});
}

TEST_CASE("Nexa: house 12345678, unit 1, on, 5 repeats") {
  Code code;
  REQUIRE(makeNexa(code, 12345678, 1, true));
  CHECK(code.repeats == 5);
  CHECK(edgesPerRepeat(code) == 132);
  // 26-bit house, group 0, on 1, unit 0001
  const char* word =
      "00101111000110000101001110"
      "0"
      "1"
      "0001";
  REQUIRE(strlen(word) == 32);
  expectEdges(all(code), times(nexa(word), 5));
}

TEST_CASE("Nexa: group off, the largest house code, unit 15") {
  Code code;
  REQUIRE(makeNexa(code, (1UL << 26) - 1, 15, false, true, 2));
  expectEdges(all(code), times(nexa("11111111111111111111111111"
                                    "1"
                                    "0"
                                    "1111"),
                               2));
  REQUIRE(makeNexa(code, 0, 0, false, false, 1));
  expectEdges(all(code), nexa("00000000000000000000000000000000"));
}

TEST_CASE("invalid codes are refused and leave the code as it was") {
  Code code;
  REQUIRE(makeRcSwitch(code, 1, 7, 3, 1));
  CHECK_FALSE(makeRcSwitch(code, 0, 1, 24));
  CHECK_FALSE(makeRcSwitch(code, 7, 1, 24));
  CHECK_FALSE(makeRcSwitch(code, 1, 1, 0));
  CHECK_FALSE(makeRcSwitch(code, 1, 1, 33));
  CHECK_FALSE(makeRcSwitch(code, 1, 0x1000000, 24));  // 25 bits in a 24-bit code
  CHECK_FALSE(makeRcSwitch(code, 1, 1, 24, 0));
  CHECK_FALSE(makeRcSwitch(code, 1, 1, 24, kMaxRepeats + 1));
  CHECK_FALSE(makeNexa(code, 1UL << 26, 0, true));
  CHECK_FALSE(makeNexa(code, 1, 16, true));
  CHECK_FALSE(makeNexa(code, 1, 1, true, false, 0));
  CHECK(code.family == Family::kRcSwitch);
  CHECK(code.value == 7);
  CHECK(code.bits == 3);
  // A default Code has no edges.
  CHECK(edgeCount(Code()) == 0);
  CHECK(all(Code()).empty());
}

TEST_CASE("fillEdges: a caller's array, and a too small one") {
  Code code;
  REQUIRE(makeRcSwitch(code, 1, 0x5A5A5A, 24, 2));
  Edge edges[100];
  CHECK(fillEdges(code, edges, 100) == 100);
  expectEdges(std::vector<Edge>(edges, edges + 100),
              times(protocol1("010110100101101001011010"), 2));
  const Edge sentinel = {true, 12345};
  Edge guard[8];
  for (Edge& edge : guard) edge = sentinel;
  CHECK(fillEdges(code, guard, 7) == 100);  // needs 100, wrote 7
  CHECK(guard[6] == Want{true, 1050});      // the fourth bit, a 1
  CHECK(guard[7] == Want{true, 12345});
}

TEST_CASE("Transmitter: non-blocking, one edge per due poll, deadlines from the schedule") {
  Code code;
  REQUIRE(makeRcSwitch(code, 1, 0x2, 2, 2));  // 10: H1050 L350 H350 L1050 H350 L10850
  const std::vector<Want> want = times(
      {{true, 1050}, {false, 350}, {true, 350}, {false, 1050}, {true, 350}, {false, 10850}}, 2);
  Transmitter transmitter;
  bool level = false;
  CHECK_FALSE(transmitter.busy());
  CHECK_FALSE(transmitter.poll(0, level));
  CHECK(transmitter.quietFor(0) == 0xFFFFFFFFUL);
  const uint32_t start = 0xFFFFF000UL;  // micros() wraps during the transmission
  transmitter.start(code, start);
  CHECK(transmitter.busy());
  uint32_t due = start;
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("edge " << i);
    // Not yet: a poll just before the deadline changes nothing.
    if (i > 0) {
      CHECK(transmitter.quietFor(due - 1) == 1);
      CHECK_FALSE(transmitter.poll(due - 1, level));
    }
    // Late by up to 37 us: the level changes, the next deadline still follows the schedule.
    const uint32_t late = static_cast<uint32_t>(i % 2 == 0 ? 0 : 37);
    REQUIRE(transmitter.poll(due + late, level));
    CHECK(level == want[i].high);
    CHECK_FALSE(transmitter.poll(due + late, level));  // one edge per deadline
    due += want[i].us;
    CHECK(transmitter.quietFor(due - want[i].us + late) == want[i].us - late);
  }
  // After the last edge: carrier off, idle.
  CHECK(transmitter.busy());
  REQUIRE(transmitter.poll(due, level));
  CHECK_FALSE(level);
  CHECK_FALSE(transmitter.busy());
  CHECK_FALSE(transmitter.poll(due + 100000, level));
}

TEST_CASE("Transmitter: stop leaves it idle") {
  Code code;
  REQUIRE(makeNexa(code, 1, 1, true));
  Transmitter transmitter;
  transmitter.start(code, 100);
  bool level;
  REQUIRE(transmitter.poll(100, level));
  CHECK(level);
  transmitter.stop();
  CHECK_FALSE(transmitter.busy());
  CHECK_FALSE(transmitter.poll(1000000, level));
}

TEST_CASE("parseCommand: the text formats") {
  Code code;
  REQUIRE(parse("nexa 12345678 1 on", code) == ParseError::kNone);
  Code want;
  REQUIRE(makeNexa(want, 12345678, 1, true));
  CHECK(code.family == Family::kNexa);
  CHECK(code.value == want.value);
  CHECK(code.repeats == 5);

  REQUIRE(parse("\"nexa 0x3FFFFFF group off x9\"", code) == ParseError::kNone);  // JSON string
  REQUIRE(makeNexa(want, 0x3FFFFFF, 0, false, true, 9));
  CHECK(code.value == want.value);
  CHECK(code.repeats == 9);

  REQUIRE(parse("  ev1527   0x5A5A5A  ", code) == ParseError::kNone);
  CHECK(code.family == Family::kRcSwitch);
  CHECK(code.protocol == 1);
  CHECK(code.bits == 24);
  CHECK(code.value == 0x5A5A5A);
  CHECK(code.repeats == 10);

  REQUIRE(parse("rc6 4660 16 x3", code) == ParseError::kNone);
  CHECK(code.protocol == 6);
  CHECK(code.bits == 16);
  CHECK(code.value == 4660);
  CHECK(code.repeats == 3);

  REQUIRE(parse("rc1 0xFFFFFFFF 32", code) == ParseError::kNone);
  CHECK(code.value == 0xFFFFFFFFUL);
}

TEST_CASE("parseCommand: invalid input is refused and the code kept") {
  Code code;
  REQUIRE(makeRcSwitch(code, 2, 3, 2, 1));
  CHECK(parse("", code) == ParseError::kEmpty);
  CHECK(parse("\"\"", code) == ParseError::kEmpty);
  CHECK(parse("   ", code) == ParseError::kEmpty);
  CHECK(parse("intertechno 1 2 on", code) == ParseError::kUnknownProtocol);
  CHECK(parse("rc7 1 24", code) == ParseError::kUnknownProtocol);
  CHECK(parse("rc0 1 24", code) == ParseError::kUnknownProtocol);
  CHECK(parse("NEXA 1 1 on", code) == ParseError::kUnknownProtocol);
  CHECK(parse("{\"protocol\":\"nexa\"}", code) == ParseError::kUnknownProtocol);
  CHECK(parse("nexa 12x 1 on", code) == ParseError::kBadNumber);
  CHECK(parse("nexa 0x 1 on", code) == ParseError::kBadNumber);
  CHECK(parse("nexa 4294967296 1 on", code) == ParseError::kBadNumber);  // 2^32
  CHECK(parse("nexa -1 1 on", code) == ParseError::kBadNumber);
  CHECK(parse("nexa 67108864 1 on", code) == ParseError::kOutOfRange);  // 2^26
  CHECK(parse("nexa 1 16 on", code) == ParseError::kOutOfRange);
  CHECK(parse("nexa 1 1 maybe", code) == ParseError::kBadState);
  CHECK(parse("nexa 1 1", code) == ParseError::kTrailing);
  CHECK(parse("nexa 1 1 on please", code) == ParseError::kTrailing);
  CHECK(parse("nexa 1 1 on x0", code) == ParseError::kOutOfRange);
  CHECK(parse("nexa 1 1 on x31", code) == ParseError::kOutOfRange);
  CHECK(parse("nexa 1 1 on xx", code) == ParseError::kBadNumber);
  CHECK(parse("nexa 1 1 on x2 x3", code) == ParseError::kTrailing);
  CHECK(parse("rc1 0x1000000 24", code) == ParseError::kOutOfRange);
  CHECK(parse("rc1 1 33", code) == ParseError::kOutOfRange);
  CHECK(parse("rc1 1 0", code) == ParseError::kOutOfRange);
  CHECK(parse("rc1 1", code) == ParseError::kTrailing);
  CHECK(parse("ev1527 0x1000000", code) == ParseError::kOutOfRange);
  CHECK(parse("ev1527 1 24", code) == ParseError::kTrailing);
  CHECK(code.family == Family::kRcSwitch);
  CHECK(code.protocol == 2);
  CHECK(code.value == 3);
}

// For tests/bridges/test_firmware_ook.py: with MSGFLO_OOK_PULSES_OUT set, the edges of a Nexa
// and an EV1527 code as rtl_433's OOK pulse data, so the real rtl_433 can decode them.
TEST_CASE("pulse data for rtl_433") {
  const char* path = getenv("MSGFLO_OOK_PULSES_OUT");
  if (path == nullptr) return;
  FILE* file = fopen(path, "w");
  REQUIRE(file != nullptr);
  Code codes[2];
  REQUIRE(makeNexa(codes[0], 12345678, 1, true));
  REQUIRE(makeRcSwitch(codes[1], 1, 0x5A5A5A, 24));
  for (const Code& code : codes) {
    fprintf(file, ";pulse data\n;version 1\n;timescale 1us\n;freq1 433920000\n");
    const std::vector<Edge> edges = all(code);
    for (size_t i = 0; i + 1 < edges.size(); i += 2) {
      REQUIRE(edges[i].high);
      REQUIRE_FALSE(edges[i + 1].high);
      fprintf(file, "%u %u\n", static_cast<unsigned>(edges[i].us),
              static_cast<unsigned>(edges[i + 1].us));
    }
    fprintf(file, ";end\n");
  }
  fclose(file);
}
