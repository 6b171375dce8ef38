// On-off keying (OOK) codes of cheap 433 MHz remote sockets, as edges a sketch puts on the DATA
// pin of a transmitter module (FS1000A, SYN115, ...): high = carrier on, low = carrier off.
//
// Two families, timings from public references (docs/rf433.md, "Transmit"):
//
// - rc-switch protocols 1-6 (PT2262, EV1527 and their clones: fixed codes of 1-32 bits). Each
//   protocol is a base pulse length T and (high, low) multiples of T for a 0 bit, a 1 bit and a
//   sync; a code is its bits, most significant first, then the sync. Protocol 1 (T = 350 us:
//   0 = 1:3, 1 = 3:1, sync 1:31) is what most sockets and 24-bit EV1527 remotes use. Protocol
//   6 is sent inverted (the levels swapped), as rc-switch does.
// - Nexa / KlikAanKlikUit / Proove / HomeEasy "self-learning" (T = 260 us): a 32-bit word of a
//   26-bit house code, a group bit, an on/off bit and a 4-bit unit, most significant first. A
//   sync (high T, low 10 T) starts it; every bit is two pulses: a 1 is (T, 5 T)(T, T), a 0 is
//   (T, T)(T, 5 T); a pause (high T, low 40 T) ends it.
//
// A transmission is the code's edges repeated (rc-switch sends 10, the Nexa remotes 5 or more).
// Nothing here touches a pin or a clock: EdgeIterator lists the edges one by one (fillEdges
// into a caller's array), and Transmitter tells a sketch's loop() when to change the pin level
// given micros(), so the sketch never blocks for longer than one edge. No heap; the edge of
// index k is computed from the code, so a whole transmission (1,320 edges for a Nexa code sent
// 10 times) needs no buffer.

#ifndef MSGFLO_OOK_H
#define MSGFLO_OOK_H

#include <stddef.h>
#include <stdint.h>

namespace msgflo {
namespace ook {

enum class Family : uint8_t { kRcSwitch, kNexa };

// One level held for a time: the pin goes to `high` and stays there for `us` microseconds.
struct Edge {
  bool high;
  uint16_t us;
};

// What to send. Made (and checked) by makeRcSwitch or makeNexa; a default Code sends nothing.
struct Code {
  Family family;
  uint8_t protocol;  // rc-switch protocol 1..kRcSwitchProtocols; 0 for Nexa
  uint8_t bits;      // 1..32 (Nexa: 32)
  uint8_t repeats;   // 1..kMaxRepeats
  uint32_t value;    // the bits, right aligned
};

static const uint8_t kRcSwitchProtocols = 6;
static const uint8_t kMaxRepeats = 30;
static const uint8_t kRcSwitchRepeats = 10;  // rc-switch's default
static const uint8_t kNexaRepeats = 5;
static const uint16_t kNexaPeriodUs = 260;
static const uint32_t kNexaMaxHouse = (1UL << 26) - 1;
static const uint8_t kNexaMaxUnit = 15;

// False (and `code` untouched) for an unknown protocol, bits outside 1..32, a value that does
// not fit in `bits` bits, or repeats outside 1..kMaxRepeats.
bool makeRcSwitch(Code& code, uint8_t protocol, uint32_t value, uint8_t bits,
                  uint8_t repeats = kRcSwitchRepeats);
// False for a house code over 26 bits, a unit over 15 or repeats outside 1..kMaxRepeats. The
// unit is the 4-bit field as sent (0..15); remotes label the first button pair "1" and send 0.
bool makeNexa(Code& code, uint32_t house, uint8_t unit, bool on, bool group = false,
              uint8_t repeats = kNexaRepeats);

// Edges in one repetition (rc-switch: 2 per bit + 2 for the sync; Nexa: 132), in all of them.
uint16_t edgesPerRepeat(const Code& code);
uint32_t edgeCount(const Code& code);
// Edge k (0 <= k < edgesPerRepeat) of a repetition; every repetition is the same.
Edge edgeAt(const Code& code, uint16_t k);

// Writes the first min(capacity, edgeCount) edges of the transmission to out; returns
// edgeCount, so a result over capacity means the array was too small.
uint32_t fillEdges(const Code& code, Edge* out, size_t capacity);

// The edges of a transmission, one per next(), repetitions included.
class EdgeIterator {
 public:
  EdgeIterator() : code_(), index_(0), repeat_(0) {}
  void start(const Code& code);
  bool next(Edge& edge);  // false once all edges have been given

 private:
  Code code_;
  uint16_t index_;
  uint8_t repeat_;
};

// Drives a pin from a sketch's loop():
//
//   bool level;
//   if (transmitter.poll(micros(), level)) digitalWrite(kTxPin, level ? HIGH : LOW);
//
// Each edge's deadline is the previous deadline plus its duration (not "now" plus it), so a
// late poll delays one edge without shifting the rest. The last edge is followed by low
// (carrier off). Times wrap with micros() after 71 minutes, handled by unsigned subtraction.
class Transmitter {
 public:
  Transmitter() : edges_(), level_(false), busy_(false), deadline_(0) {}
  void start(const Code& code, uint32_t nowUs);
  void stop() { busy_ = false; }
  bool busy() const { return busy_; }
  // True when the pin must change now, to `level`; call it as often as loop() runs.
  bool poll(uint32_t nowUs, bool& level);
  // Microseconds until the next edge is due (0 if overdue); 0xFFFFFFFF when idle. A sketch does
  // slow work (serial frames) only when this is long enough, i.e. in the syncs and pauses.
  uint32_t quietFor(uint32_t nowUs) const;

 private:
  EdgeIterator edges_;
  bool level_;
  bool busy_;
  uint32_t deadline_;
};

// A command as text, for the RemoteSockets example's inport (the library has no JSON reader):
//
//   nexa <house> <unit> on|off [xN]       e.g. nexa 12345678 1 on
//   nexa <house> group on|off [xN]        the group command (all units)
//   rc<P> <code> <bits> [xN]              rc-switch protocol P, e.g. rc1 0x5A5A5A 24
//   ev1527 <code> [xN]                    rc1 with 24 bits
//
// Numbers are decimal or 0x-hexadecimal; xN sets the repeats. Surrounding double quotes (a
// JSON string as the bridge delivers it) and extra spaces are ignored; words are lower case.
enum class ParseError : uint8_t {
  kNone,
  kEmpty,
  kUnknownProtocol,  // the first word
  kBadNumber,        // not a number, or over 32 bits
  kOutOfRange,       // a number the code does not take (house, unit, bits, value, repeats)
  kBadState,         // not on/off
  kTrailing,         // words left over, or missing
};
ParseError parseCommand(const uint8_t* text, size_t length, Code& code);

}  // namespace ook
}  // namespace msgflo

#endif  // MSGFLO_OOK_H
