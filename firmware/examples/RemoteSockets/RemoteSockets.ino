// RemoteSockets: switches cheap 433 MHz remote sockets from a graph. The inport `code` takes a
// command as text (the library has no JSON reader; a JSON string works, its quotes are
// ignored; the formats are in MsgfloOok.h):
//
//   nexa 12345678 1 on        Nexa / KlikAanKlikUit / Proove self-learning, house, unit 0..15
//   nexa 12345678 group off   the group command
//   ev1527 0x5A5A5A           a 24-bit PT2262/EV1527 code (rc-switch protocol 1)
//   rc2 0x1234 16 x8          rc-switch protocol 1..6, code, bits, and optionally the repeats
//
// The outport `sent` tells when a command's last repeat has gone out, as JSON such as
// {"protocol":"nexa","bits":32,"repeats":5,"edges":660}; `error` the reason a command was
// refused. A command that arrives while one is on air waits (one place,
// the newest wins).
//
// Wiring, a FS1000A or SYN115 transmitter module: VCC to 5 V (up to 12 V gives more range on a
// FS1000A), GND to GND, DATA to pin 10; a 17.3 cm wire (a quarter wave at 433.92 MHz) soldered
// to the module's ANT pad.
//
// Timing: the pin follows micros() from loop() and never waits; serial frames are handled only
// while the next edge is more than kSerialGapUs away (the ~10 ms pauses between repetitions),
// so a frame never stretches a pulse, even a reply that waits for room in the UART's send
// buffer. The UART's receive buffer keeps 64 bytes meanwhile.

#include <Msgflo.h>
#include <MsgfloOok.h>

static const uint8_t kTxPin = 10;
static const uint32_t kSerialGapUs = 5000;

static msgflo::SerialLink<> serialLink(Serial);
static msgflo::StaticParticipant<1, 2> participant;
static msgflo::Outport sent;
static msgflo::Outport error;
static msgflo::ook::Transmitter transmitter;

static msgflo::ook::Code pending;
static msgflo::ook::Code onAir;
static bool hasPending = false;
static bool reportSent = false;

static void report(const msgflo::ook::Code& code) {
  char protocol[4] = {'r', 'c', static_cast<char>('0' + code.protocol), '\0'};
  msgflo::JsonBuffer<64> json;
  msgflo::JsonWriter writer(json);
  writer.beginObject().key(F("protocol"));
  if (code.family == msgflo::ook::Family::kNexa) {
    writer.string(F("nexa"));
  } else {
    writer.string(protocol);
  }
  writer.key(F("bits")).integer(code.bits).key(F("repeats")).integer(code.repeats);
  writer.key(F("edges")).integer(static_cast<long>(msgflo::ook::edgeCount(code))).endObject();
  sent.sendJson(json);
}

static msgflo::FlashText reasonText(msgflo::ook::ParseError reason) {
  using msgflo::ook::ParseError;
  switch (reason) {
    case ParseError::kEmpty:
      return F("empty command");
    case ParseError::kUnknownProtocol:
      return F("unknown protocol: nexa, ev1527 or rc1..rc6");
    case ParseError::kBadNumber:
      return F("not a number (decimal or 0x hex, 32 bits)");
    case ParseError::kOutOfRange:
      return F("out of range (house 26 bits, unit 0..15, bits 1..32, x1..x30)");
    case ParseError::kBadState:
      return F("on or off expected");
    default:
      return F("missing or extra words");
  }
}

// The reason as a JSON string, as the port's type says.
static void refuse(msgflo::ook::ParseError reason) {
  msgflo::JsonBuffer<72> json;
  msgflo::JsonWriter(json).string(reasonText(reason));
  error.sendJson(json);
}

static void onCode(const uint8_t* payload, size_t length, void*) {
  msgflo::ook::Code code;
  const msgflo::ook::ParseError reason = msgflo::ook::parseCommand(payload, length, code);
  if (reason != msgflo::ook::ParseError::kNone) {
    refuse(reason);
    return;
  }
  pending = code;
  hasPending = true;
}

void setup() {
  pinMode(kTxPin, OUTPUT);
  digitalWrite(kTxPin, LOW);
  Serial.begin(115200);
  participant.setComponent(F("RemoteSockets"));
  participant.setLabel(F("Switches 433 MHz remote sockets (Nexa, PT2262/EV1527)"));
  participant.setIcon(F("plug"));
  participant.setVersion(F("1.0.0"));
  participant.inport(F("code"), F("string"), onCode);
  sent = participant.outport(F("sent"), F("object"));
  error = participant.outport(F("error"), F("string"));
  participant.begin(serialLink);
}

void loop() {
  bool level;
  if (transmitter.poll(micros(), level)) digitalWrite(kTxPin, level ? HIGH : LOW);
  if (transmitter.quietFor(micros()) < kSerialGapUs) return;  // an edge is near: only the pin
  participant.loop();
  if (transmitter.busy()) return;
  if (reportSent) {
    reportSent = false;
    report(onAir);
  }
  if (hasPending) {
    hasPending = false;
    onAir = pending;
    transmitter.start(onAir, micros());
    reportSent = true;
  }
}
