// A battery sensor (ESP8266 or ESP32): wakes, connects with a persistent session, announces,
// publishes one reading at QoS 1, takes what was sent to its inport while it slept, and goes
// back to deep sleep once settled() (or after a timeout, so a missing broker cannot drain the
// battery). It declares its discovery period as the sleep time, so the coordinator keeps it.
// ESP8266: wire GPIO16 (D0) to RST for the wake-up.

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

static const uint16_t kSleepSeconds = 300;
static const unsigned long kAwakeTimeout = 15000;  // ms: give up and sleep anyway

static WiFiClient wifiClient;
static msgflo::MqttConfig mqttConfig;
static msgflo::StaticParticipant<1, 1> participant;
static msgflo::Outport temperature;
static msgflo::MqttTransportBase* transport = 0;
static bool sent = false;
static uint16_t sleepSeconds = kSleepSeconds;

static void onSleep(const uint8_t* payload, size_t length, void*) {
  uint16_t value = 0;
  for (size_t i = 0; i < length && payload[i] >= '0' && payload[i] <= '9'; ++i) {
    value = static_cast<uint16_t>(value * 10 + (payload[i] - '0'));
  }
  if (value >= 10) sleepSeconds = value;  // applies from this wake on
}

static void sleepNow() {
  if (transport) transport->disconnect();
  WiFi.disconnect(true);
#if defined(ESP8266)
  ESP.deepSleep(static_cast<uint64_t>(sleepSeconds) * 1000000ULL);
#elif defined(ESP32)
  esp_sleep_enable_timer_wakeup(static_cast<uint64_t>(sleepSeconds) * 1000000ULL);
  esp_deep_sleep_start();
#endif
}

void setup() {
  WiFi.mode(WIFI_STA);
  WiFi.begin(MSGFLO_WIFI_SSID, MSGFLO_WIFI_PASSPHRASE);
  mqttConfig.host = MSGFLO_MQTT_HOST;
  mqttConfig.port = MSGFLO_MQTT_PORT;
  mqttConfig.role = MSGFLO_ROLE;
  mqttConfig.user = MSGFLO_MQTT_USER;
  mqttConfig.password = MSGFLO_MQTT_PASSWORD;
  mqttConfig.cleanSession = false;  // the broker keeps its QoS 1 messages while it sleeps
  mqttConfig.discoveryPeriod = kSleepSeconds;
  mqttConfig.retryMin = 200;
  static msgflo::MqttTransport<> mqtt(wifiClient, mqttConfig);
  transport = &mqtt;
  participant.setComponent(F("SleepySensor"));
  participant.setLabel(F("A battery temperature sensor"));
  participant.inport(F("sleep"), F("number"), onSleep);
  temperature = participant.outport(F("temperature"), F("number"));
  participant.begin(mqtt);
}

void loop() {
  participant.loop();
  if (!sent) {  // queued now, published once connected
    sent = temperature.sendDecimal(analogRead(A0) * (330.0f / 1024.0f) - 50.0f, 1);
  }
  if ((sent && transport->settled()) || millis() > kAwakeTimeout) sleepNow();
}
