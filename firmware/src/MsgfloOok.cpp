#include "MsgfloOok.h"

#include "MsgfloLink.h"  // MSGFLO_PGM_BYTE (pgmspace on AVR and ESP8266)

#if defined(PROGMEM)
#define MSGFLO_OOK_FLASH PROGMEM
#else
#define MSGFLO_OOK_FLASH
#endif

namespace msgflo {
namespace ook {

namespace {

// rc-switch's protocol table (sui77/rc-switch, Protocol.h; facts, restated here): the base
// pulse in tens of microseconds, then (high, low) multiples of it for the sync, a 0 and a 1,
// then whether the levels are inverted. In flash: 48 bytes of RAM saved on an AVR.
enum Column { kPulseTens, kSyncHigh, kSyncLow, kZeroHigh, kZeroLow, kOneHigh, kOneLow, kInverted };
const uint8_t kRcSwitch[kRcSwitchProtocols][8] MSGFLO_OOK_FLASH = {
    {35, 1, 31, 1, 3, 3, 1, 0},    // 1: PT2262, EV1527 and most sockets, 350 us
    {65, 1, 10, 1, 2, 2, 1, 0},    // 2: 650 us
    {10, 30, 71, 4, 11, 9, 6, 0},  // 3: 100 us
    {38, 1, 6, 1, 3, 3, 1, 0},     // 4: 380 us
    {50, 6, 14, 1, 2, 2, 1, 0},    // 5: 500 us
    {45, 23, 1, 1, 2, 2, 1, 1},    // 6: HT6P20B, 450 us, inverted
};

uint8_t rcColumn(uint8_t protocol, Column column) {
  return MSGFLO_PGM_BYTE(&kRcSwitch[protocol - 1][column]);
}

const uint16_t kNexaWordEdges = 32 * 4;

Edge edge(bool high, uint32_t us) {
  Edge e;
  e.high = high;
  e.us = static_cast<uint16_t>(us);
  return e;
}

Edge rcSwitchEdge(const Code& code, uint16_t k) {
  const uint16_t pulse = static_cast<uint16_t>(rcColumn(code.protocol, kPulseTens) * 10U);
  const bool inverted = rcColumn(code.protocol, kInverted) != 0;
  const bool high = (k % 2 == 0) != inverted;  // even: the pulse, odd: the gap after it
  Column column;
  if (k >= 2U * code.bits) {
    column = k % 2 == 0 ? kSyncHigh : kSyncLow;
  } else {
    const bool one = (code.value >> (code.bits - 1 - k / 2)) & 1U;
    column = one ? (k % 2 == 0 ? kOneHigh : kOneLow) : (k % 2 == 0 ? kZeroHigh : kZeroLow);
  }
  return edge(high, static_cast<uint32_t>(pulse) * rcColumn(code.protocol, column));
}

Edge nexaEdge(const Code& code, uint16_t k) {
  const uint32_t t = kNexaPeriodUs;
  if (k == 0) return edge(true, t);
  if (k == 1) return edge(false, 10 * t);  // sync
  const uint16_t j = static_cast<uint16_t>(k - 2);
  if (j == kNexaWordEdges) return edge(true, t);
  if (j > kNexaWordEdges) return edge(false, 40 * t);  // pause
  if (j % 2 == 0) return edge(true, t);
  const bool one = (code.value >> (31 - j / 4)) & 1U;
  const bool firstHalf = j % 4 == 1;
  return edge(false, one == firstHalf ? 5 * t : t);  // 1: long gap then short, 0: the reverse
}

bool repeatsOk(uint8_t repeats) {
  return repeats >= 1 && repeats <= kMaxRepeats;
}

}  // namespace

bool makeRcSwitch(Code& code, uint8_t protocol, uint32_t value, uint8_t bits, uint8_t repeats) {
  if (protocol < 1 || protocol > kRcSwitchProtocols || bits < 1 || bits > 32) return false;
  if (bits < 32 && value >> bits != 0) return false;
  if (!repeatsOk(repeats)) return false;
  code.family = Family::kRcSwitch;
  code.protocol = protocol;
  code.bits = bits;
  code.repeats = repeats;
  code.value = value;
  return true;
}

bool makeNexa(Code& code, uint32_t house, uint8_t unit, bool on, bool group, uint8_t repeats) {
  if (house > kNexaMaxHouse || unit > kNexaMaxUnit || !repeatsOk(repeats)) return false;
  code.family = Family::kNexa;
  code.protocol = 0;
  code.bits = 32;
  code.repeats = repeats;
  code.value =
      house << 6 | static_cast<uint32_t>(group) << 5 | static_cast<uint32_t>(on) << 4 | unit;
  return true;
}

uint16_t edgesPerRepeat(const Code& code) {
  if (code.repeats == 0) return 0;  // a default Code: nothing to send
  if (code.family == Family::kNexa) return 2 + kNexaWordEdges + 2;
  return static_cast<uint16_t>(2U * code.bits + 2U);
}

uint32_t edgeCount(const Code& code) {
  return static_cast<uint32_t>(edgesPerRepeat(code)) * code.repeats;
}

Edge edgeAt(const Code& code, uint16_t k) {
  return code.family == Family::kNexa ? nexaEdge(code, k) : rcSwitchEdge(code, k);
}

uint32_t fillEdges(const Code& code, Edge* out, size_t capacity) {
  EdgeIterator edges;
  edges.start(code);
  for (size_t i = 0; i < capacity && edges.next(out[i]); ++i) {
  }
  return edgeCount(code);
}

void EdgeIterator::start(const Code& code) {
  code_ = code;
  index_ = 0;
  repeat_ = 0;
}

bool EdgeIterator::next(Edge& edge) {
  const uint16_t perRepeat = edgesPerRepeat(code_);
  if (perRepeat == 0 || repeat_ >= code_.repeats) return false;
  edge = edgeAt(code_, index_);
  if (++index_ == perRepeat) {
    index_ = 0;
    ++repeat_;
  }
  return true;
}

void Transmitter::start(const Code& code, uint32_t nowUs) {
  edges_.start(code);
  busy_ = true;
  deadline_ = nowUs;  // the first edge is due at once
  level_ = false;
}

bool Transmitter::poll(uint32_t nowUs, bool& level) {
  if (!busy_ || static_cast<int32_t>(nowUs - deadline_) < 0) return false;
  Edge next;
  if (edges_.next(next)) {
    deadline_ += next.us;
    level_ = next.high;
  } else {
    busy_ = false;  // done: carrier off
    level_ = false;
  }
  level = level_;
  return true;
}

uint32_t Transmitter::quietFor(uint32_t nowUs) const {
  if (!busy_) return 0xFFFFFFFFUL;
  const int32_t left = static_cast<int32_t>(deadline_ - nowUs);
  return left > 0 ? static_cast<uint32_t>(left) : 0;
}

// ---- the text command ----

namespace {

class Words {
 public:
  Words(const uint8_t* text, size_t length) : text_(text), end_(length), pos_(0) {
    // A JSON string as the bridge delivers it: "nexa 1 2 on" with its quotes.
    if (end_ >= 2 && text_[0] == '"' && text_[end_ - 1] == '"') {
      pos_ = 1;
      --end_;
    }
  }

  // The next word, as [start, start + size); false at the end.
  bool next(const uint8_t*& start, size_t& size) {
    while (pos_ < end_ && isSpace(text_[pos_])) ++pos_;
    if (pos_ == end_) return false;
    start = text_ + pos_;
    while (pos_ < end_ && !isSpace(text_[pos_])) ++pos_;
    size = static_cast<size_t>(text_ + pos_ - start);
    return true;
  }

 private:
  static bool isSpace(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  const uint8_t* text_;
  size_t end_;
  size_t pos_;
};

bool equals(const uint8_t* word, size_t size, const char* literal) {
  size_t i = 0;
  for (; i < size && literal[i] != '\0'; ++i) {
    if (word[i] != static_cast<uint8_t>(literal[i])) return false;
  }
  return i == size && literal[i] == '\0';
}

int digitValue(uint8_t c, uint8_t base) {
  int value = -1;
  if (c >= '0' && c <= '9') value = c - '0';
  if (c >= 'a' && c <= 'f') value = c - 'a' + 10;
  if (c >= 'A' && c <= 'F') value = c - 'A' + 10;
  return value < base ? value : -1;
}

// Decimal or 0x-hexadecimal, at most 32 bits.
bool number(const uint8_t* word, size_t size, uint32_t& out) {
  uint8_t base = 10;
  if (size > 2 && word[0] == '0' && (word[1] == 'x' || word[1] == 'X')) {
    base = 16;
    word += 2;
    size -= 2;
  }
  if (size == 0) return false;
  uint32_t value = 0;
  for (size_t i = 0; i < size; ++i) {
    const int digit = digitValue(word[i], base);
    if (digit < 0 || value > (0xFFFFFFFFUL - static_cast<uint32_t>(digit)) / base) return false;
    value = value * base + static_cast<uint32_t>(digit);
  }
  out = value;
  return true;
}

bool nextNumber(Words& words, uint32_t& out, ParseError& error) {
  const uint8_t* word;
  size_t size;
  if (!words.next(word, size)) {
    error = ParseError::kTrailing;
    return false;
  }
  if (!number(word, size, out)) {
    error = ParseError::kBadNumber;
    return false;
  }
  return true;
}

// The optional "xN" after a command, then nothing.
ParseError tail(Words& words, uint8_t& repeats) {
  const uint8_t* word;
  size_t size;
  if (!words.next(word, size)) return ParseError::kNone;
  uint32_t value;
  if (size < 2 || word[0] != 'x') return ParseError::kTrailing;
  if (!number(word + 1, size - 1, value)) return ParseError::kBadNumber;
  if (value < 1 || value > kMaxRepeats) return ParseError::kOutOfRange;
  repeats = static_cast<uint8_t>(value);
  return words.next(word, size) ? ParseError::kTrailing : ParseError::kNone;
}

ParseError parseNexa(Words& words, Code& code) {
  ParseError error = ParseError::kNone;
  uint32_t house;
  if (!nextNumber(words, house, error)) return error;
  const uint8_t* word;
  size_t size;
  if (!words.next(word, size)) return ParseError::kTrailing;
  const bool group = equals(word, size, "group");
  uint32_t unit = 0;
  if (!group && !number(word, size, unit)) return ParseError::kBadNumber;
  if (!words.next(word, size)) return ParseError::kTrailing;
  const bool on = equals(word, size, "on");
  if (!on && !equals(word, size, "off")) return ParseError::kBadState;
  uint8_t repeats = kNexaRepeats;
  error = tail(words, repeats);
  if (error != ParseError::kNone) return error;
  if (unit > kNexaMaxUnit) return ParseError::kOutOfRange;
  const bool made = makeNexa(code, house, static_cast<uint8_t>(unit), on, group, repeats);
  return made ? ParseError::kNone : ParseError::kOutOfRange;
}

ParseError parseRcSwitch(Words& words, uint8_t protocol, bool ev1527, Code& code) {
  ParseError error = ParseError::kNone;
  uint32_t value;
  if (!nextNumber(words, value, error)) return error;
  uint32_t bits = 24;
  if (!ev1527 && !nextNumber(words, bits, error)) return error;
  uint8_t repeats = kRcSwitchRepeats;
  error = tail(words, repeats);
  if (error != ParseError::kNone) return error;
  if (bits > 32) return ParseError::kOutOfRange;
  const bool made = makeRcSwitch(code, protocol, value, static_cast<uint8_t>(bits), repeats);
  return made ? ParseError::kNone : ParseError::kOutOfRange;
}

}  // namespace

ParseError parseCommand(const uint8_t* text, size_t length, Code& code) {
  Words words(text, length);
  const uint8_t* word;
  size_t size;
  if (!words.next(word, size)) return ParseError::kEmpty;
  Code parsed = Code();
  ParseError error = ParseError::kUnknownProtocol;
  if (equals(word, size, "nexa")) {
    error = parseNexa(words, parsed);
  } else if (equals(word, size, "ev1527")) {
    error = parseRcSwitch(words, 1, true, parsed);
  } else if (size == 3 && word[0] == 'r' && word[1] == 'c' && word[2] >= '1' &&
             word[2] < '1' + kRcSwitchProtocols) {
    error = parseRcSwitch(words, static_cast<uint8_t>(word[2] - '0'), false, parsed);
  }
  if (error == ParseError::kNone) code = parsed;
  return error;
}

}  // namespace ook
}  // namespace msgflo
