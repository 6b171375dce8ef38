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

#ifndef WIFI_SSID
#define WIFI_SSID "msgflo-kit"
#define WIFI_PASSPHRASE "change-me"
#define BROKER_HOST "192.168.4.1"
#define BROKER_PORT 1883
#define DEVICE_ROLE "garden"
#define DEVICE_USER "garden"
#define DEVICE_PASSWORD "change-me"
#endif

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
  WiFi.begin(WIFI_SSID, WIFI_PASSPHRASE);
  mqttConfig.host = BROKER_HOST;
  mqttConfig.port = BROKER_PORT;
  mqttConfig.role = DEVICE_ROLE;
  mqttConfig.user = DEVICE_USER;
  mqttConfig.password = DEVICE_PASSWORD;
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
