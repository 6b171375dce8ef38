// A LED on WiFi (ESP8266 or ESP32): in `led` (boolean: true / 1 / on lights it), out `state`
// (boolean, after each change). The same participant code as ButtonLed over the serial link:
// only the transport object differs.

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

#ifndef LED_BUILTIN
#define LED_BUILTIN 2
#endif

static WiFiClient wifiClient;
static msgflo::MqttConfig mqttConfig;
static msgflo::StaticParticipant<1, 1> participant;
static msgflo::Outport state;

static void onLed(const uint8_t* payload, size_t length, void*) {
  const bool on = length > 0 && (payload[0] == 't' || payload[0] == '1' ||
                                 (length > 1 && payload[0] == 'o' && payload[1] == 'n'));
  digitalWrite(LED_BUILTIN, on ? HIGH : LOW);
  state.sendBoolean(on);
}

void setup() {
  pinMode(LED_BUILTIN, OUTPUT);
  WiFi.mode(WIFI_STA);
  WiFi.begin(MSGFLO_WIFI_SSID, MSGFLO_WIFI_PASSPHRASE);
  mqttConfig.host = MSGFLO_MQTT_HOST;
  mqttConfig.port = MSGFLO_MQTT_PORT;
  mqttConfig.role = MSGFLO_ROLE;
  mqttConfig.user = MSGFLO_MQTT_USER;
  mqttConfig.password = MSGFLO_MQTT_PASSWORD;
  static msgflo::MqttTransport<> mqtt(wifiClient, mqttConfig);
  static char chipId[13];
  const char digits[] = "0123456789abcdef";
  uint8_t mac[6];
  WiFi.macAddress(mac);
  for (int i = 0; i < 6; ++i) {
    chipId[2 * i] = digits[mac[i] >> 4];
    chipId[2 * i + 1] = digits[mac[i] & 0xF];
  }
  chipId[12] = 0;
  participant.setComponent(F("WifiLed"));
  participant.setLabel(F("A LED over WiFi"));
  participant.setIcon(F("lightbulb-o"));
  participant.setChipId(chipId);  // id: led-<MAC>
  participant.inport(F("led"), F("boolean"), onLed);
  state = participant.outport(F("state"), F("boolean"));
  participant.begin(mqtt);
}

void loop() {
  participant.loop();
}
