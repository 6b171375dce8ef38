// Echo: whatever arrives on the inport `in` goes straight back out on the outport `out`, byte
// for byte: the repeat participant of msgflo's examples, and the device the gateway's
// hardware-in-the-loop test talks to.

#include <Msgflo.h>

static msgflo::SerialLink<> serialLink(Serial);
static msgflo::StaticParticipant<1, 1> participant;
static msgflo::Outport out;

// The context is the outport to answer on; the payload is valid during the call, which is all
// the send needs.
static void onIn(const uint8_t* payload, size_t length, void* context) {
  static_cast<msgflo::Outport*>(context)->sendBytes(payload, length);
}

void setup() {
  Serial.begin(115200);
  participant.setComponent(F("Echo"));
  participant.setLabel(F("Sends every message back"));
  participant.setIcon(F("repeat"));
  participant.setVersion(F("1.0.0"));
  participant.inport(F("in"), F("any"), onIn, &out);
  out = participant.outport(F("out"), F("any"));
  participant.begin(serialLink);
}

void loop() {
  participant.loop();
}
