// ButtonLed: a push button on an outport and the board's LED on an inport, over the
// msgflo-gateway serial link. Plug the board into the gateway's USB port: it appears in the
// graph as a ButtonLed participant with the outport `button` (true while pressed) and the
// inport `led` (true/false, 1/0 or on/off).
//
// Wiring: a push button from pin 2 to GND (the internal pull-up holds the pin high).

#include <Msgflo.h>

static const uint8_t kButtonPin = 2;
static const unsigned long kDebounceMs = 30;

static msgflo::SerialLink<> serialLink(Serial);
static msgflo::StaticParticipant<1, 1> participant;
static msgflo::Outport button;

static bool pressed = false;  // the debounced state last sent
static bool reading = false;  // the raw state last read
static unsigned long readingSince = 0;

static bool isOn(const uint8_t* payload, size_t length) {
  if (length == 0) return false;
  return payload[0] == 't' || payload[0] == '1' || (length >= 2 && payload[1] == 'n');
}

static void onLed(const uint8_t* payload, size_t length, void*) {
  digitalWrite(LED_BUILTIN, isOn(payload, length) ? HIGH : LOW);
}

void setup() {
  pinMode(kButtonPin, INPUT_PULLUP);
  pinMode(LED_BUILTIN, OUTPUT);
  Serial.begin(115200);
  participant.setComponent(F("ButtonLed"));
  participant.setLabel(F("A button and a LED"));
  participant.setIcon(F("lightbulb-o"));
  participant.setVersion(F("1.0.0"));
  participant.inport(F("led"), F("boolean"), onLed);
  button = participant.outport(F("button"), F("boolean"));
  participant.begin(serialLink);  // sends the hello
}

void loop() {
  participant.loop();  // never waits: reads what has arrived and answers it
  const bool now = digitalRead(kButtonPin) == LOW;
  if (now != reading) {
    reading = now;
    readingSince = millis();
  } else if (reading != pressed && millis() - readingSince >= kDebounceMs) {
    pressed = reading;
    button.sendBoolean(pressed);
  }
}
