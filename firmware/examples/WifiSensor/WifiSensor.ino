// A temperature sensor on WiFi (ESP8266 or ESP32): the msgflo participant straight on the
// gateway's broker over MQTT. Out `temperature` every `interval` ms (in, number, >= 100).

#if defined(ESP8266)
#include <ESP8266WiFi.h>
#elif defined(ESP32)
#include <WiFi.h>
#endif
#include <Msgflo.h>
#include <MsgfloMqtt.h>

// secrets.h, next to this file: the output of `gateway-config device add ROLE` on the gateway
// (WiFi, broker address and port, this role's MQTT user and password). Keep it out of git.
#include "secrets.h"

static WiFiClient wifiClient;
static msgflo::MqttConfig mqttConfig;
static msgflo::StaticParticipant<1, 1> participant;
static msgflo::Outport temperature;
static unsigned long interval = 5000;
static unsigned long lastSent = 0;
static char chipId[17];

static void onInterval(const uint8_t* payload, size_t length, void*) {
  unsigned long value = 0;
  for (size_t i = 0; i < length && payload[i] >= '0' && payload[i] <= '9'; ++i) {
    value = value * 10 + static_cast<unsigned long>(payload[i] - '0');
  }
  if (value >= 100) interval = value;
}

static void readChipId() {
#if defined(ESP8266)
  const uint32_t id = ESP.getChipId();
#elif defined(ESP32)
  const uint32_t id = static_cast<uint32_t>(ESP.getEfuseMac() >> 24);
#else
  const uint32_t id = 0;
#endif
  const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) chipId[i] = digits[(id >> (28 - 4 * i)) & 0xF];
  chipId[8] = 0;
}

void setup() {
  WiFi.mode(WIFI_STA);
  WiFi.begin(MSGFLO_WIFI_SSID,
             MSGFLO_WIFI_PASSPHRASE);  // joins in the background; the transport retries
  readChipId();
  mqttConfig.host = MSGFLO_MQTT_HOST;
  mqttConfig.port = MSGFLO_MQTT_PORT;
  mqttConfig.role = MSGFLO_ROLE;
  mqttConfig.user = MSGFLO_MQTT_USER;
  mqttConfig.password = MSGFLO_MQTT_PASSWORD;
  static msgflo::MqttTransport<> mqtt(wifiClient, mqttConfig);
  participant.setComponent(F("WifiSensor"));
  participant.setLabel(F("Temperature over WiFi"));
  participant.setIcon(F("thermometer"));
  participant.setChipId(chipId);  // id: sensor-<chip id>
  participant.inport(F("interval"), F("number"), onInterval);
  temperature = participant.outport(F("temperature"), F("number"));
  participant.begin(mqtt);
}

void loop() {
  participant.loop();  // never waits long: connects, reconnects, announces, delivers
  const unsigned long now = millis();
  if (now - lastSent >= interval) {
    lastSent = now;
    const float celsius = analogRead(A0) * (330.0f / 1024.0f) - 50.0f;  // a TMP36
    temperature.sendDecimal(celsius, 1);
  }
}
