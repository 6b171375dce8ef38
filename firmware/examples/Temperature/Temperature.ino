// Temperature: a sensor that sends a reading on its outport `temperature` every few seconds,
// timed with millis() so the sketch never blocks. The inport `interval` sets the period in ms.
//
// Wiring: a TMP36 on A0 (10 mV per degree Celsius, 500 mV at 0 degrees).

#include <Msgflo.h>

static const uint8_t kSensorPin = A0;

static msgflo::SerialLink<> serialLink(Serial);
static msgflo::StaticParticipant<1, 1> participant;
static msgflo::Outport temperature;

static unsigned long intervalMs = 5000;
static unsigned long lastSent = 0;

static float readCelsius() {
  const float millivolts = static_cast<float>(analogRead(kSensorPin)) * (5000.0f / 1024.0f);
  return (millivolts - 500.0f) / 10.0f;
}

// A whole number of milliseconds, 100 or more; anything else is ignored.
static void onInterval(const uint8_t* payload, size_t length, void*) {
  unsigned long value = 0;
  for (size_t i = 0; i < length; ++i) {
    if (payload[i] < '0' || payload[i] > '9' || value > 86400000UL) return;
    value = value * 10 + (payload[i] - '0');
  }
  if (value >= 100) intervalMs = value;
}

void setup() {
  Serial.begin(115200);
  participant.setComponent(F("Temperature"));
  participant.setLabel(F("A TMP36 temperature sensor, degrees Celsius"));
  participant.setIcon(F("thermometer"));
  participant.setVersion(F("1.0.0"));
  participant.inport(F("interval"), F("number"), onInterval);
  temperature = participant.outport(F("temperature"), F("number"));
  participant.begin(serialLink);
}

void loop() {
  participant.loop();
  const unsigned long now = millis();
  if (now - lastSent >= intervalMs) {  // wraps correctly after 49 days
    lastSent = now;
    temperature.sendDecimal(readCelsius(), 1);
  }
}
