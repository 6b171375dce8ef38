// The firmware library as a host program: a participant with inport `in` and outport `out`
// on a real broker through PosixClient, for tests/bridges/test_firmware_mqtt.py and
// bench/firmware_mqtt.py. Every message on `in` is printed and echoed on `out` as `echo:<it>`
// (not with --no-echo).
//
//   mqtt_participant --port 1883 --role dev [--host 127.0.0.1] [--persistent] [--send TEXT]
//                    [--sleepy] [--keepalive S] [--period S] [--retry-min MS] [--quiet MS]
//                    [--inflight N] [--no-echo] [--no-inport] [--deadline S]
// MSGFLO_MQTT_USER and MSGFLO_MQTT_PASSWORD give the credentials. It prints one line per event
// (`state ...`, `received ...`, `counters ...`) and, with --sleepy, runs one wake cycle:
// connect, announce, send, wait until settled, disconnect, print `slept awake_us=N`, exit 0.

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "Msgflo.h"
#include "MsgfloMqtt.h"
#include "PosixClient.h"

using namespace msgflo;

namespace {

volatile sig_atomic_t stopping = 0;
bool echoing = true;
Outport out;

void onSignal(int) {
  stopping = 1;
}

long long microseconds() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
}

void onIn(const uint8_t* payload, size_t length, void*) {
  printf("received in %.*s\n", static_cast<int>(length), reinterpret_cast<const char*>(payload));
  fflush(stdout);
  if (!echoing) return;
  char echo[300];
  const int n = snprintf(echo, sizeof echo, "echo:%.*s", static_cast<int>(length),
                         reinterpret_cast<const char*>(payload));
  if (n > 0 && static_cast<size_t>(n) < sizeof echo) out.send(echo);
  fflush(stdout);
}

const char* stateName(MqttState state) {
  switch (state) {
    case MqttState::Idle:
      return "idle";
    case MqttState::Waiting:
      return "waiting";
    case MqttState::Connecting:
      return "connecting";
    case MqttState::Connected:
      return "connected";
  }
  return "?";
}

void printCounters(const MqttCounters& c) {
  printf(
      "counters attempts=%u connects=%u reconnects=%u lost=%u refused=%u malformed=%u "
      "oversized=%u dropped=%u unknown=%u barriers=%u\n",
      static_cast<unsigned>(c.attempts), static_cast<unsigned>(c.connects),
      static_cast<unsigned>(c.reconnects), static_cast<unsigned>(c.lost),
      static_cast<unsigned>(c.refused), static_cast<unsigned>(c.malformed),
      static_cast<unsigned>(c.oversized), static_cast<unsigned>(c.dropped),
      static_cast<unsigned>(c.unknown), static_cast<unsigned>(c.barriers));
  fflush(stdout);
}

const char* option(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

bool flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const long long wake = microseconds();
  setvbuf(stdout, nullptr, _IOLBF, 0);
  signal(SIGTERM, onSignal);
  signal(SIGINT, onSignal);
  MqttConfig config;
  config.host = option(argc, argv, "--host", "127.0.0.1");
  config.port = static_cast<uint16_t>(atoi(option(argc, argv, "--port", "1883")));
  config.role = option(argc, argv, "--role", "device");
  config.user = getenv("MSGFLO_MQTT_USER");
  config.password = getenv("MSGFLO_MQTT_PASSWORD");
  config.cleanSession = !flag(argc, argv, "--persistent");
  config.keepalive = static_cast<uint16_t>(atoi(option(argc, argv, "--keepalive", "30")));
  config.discoveryPeriod = static_cast<uint16_t>(atoi(option(argc, argv, "--period", "60")));
  config.retryMin = static_cast<uint16_t>(atoi(option(argc, argv, "--retry-min", "1000")));
  config.quietTime = static_cast<uint16_t>(atoi(option(argc, argv, "--quiet", "0")));
  config.brokerInflight = static_cast<uint8_t>(atoi(option(argc, argv, "--inflight", "20")));
  echoing = !flag(argc, argv, "--no-echo");
  const char* sendText = option(argc, argv, "--send", nullptr);
  const bool sleepy = flag(argc, argv, "--sleepy");
  const long long deadline = wake + atoll(option(argc, argv, "--deadline", "60")) * 1000000;

  static PosixClient client;
  static MqttTransport<> mqtt(client, config);
  static StaticParticipant<1, 1> participant(F("HostDevice"));
  participant.setLabel(F("The firmware library on the host"));
  participant.setChipId("0001");
  if (!flag(argc, argv, "--no-inport")) participant.inport(F("in"), F("string"), onIn);
  out = participant.outport(F("out"), F("string"));
  participant.begin(mqtt);
  printf("id %s\n", mqtt.id());
  if (sendText) out.send(sendText);

  MqttState state = MqttState::Idle;
  MqttCounters counters = {};
  while (!stopping && microseconds() < deadline) {
    participant.loop();
    if (mqtt.state() != state) {
      state = mqtt.state();
      printf("state %s\n", stateName(state));
    }
    if (memcmp(&counters, &mqtt.counters(), sizeof counters) != 0) {
      counters = mqtt.counters();
      printCounters(counters);
    }
    if (sleepy && mqtt.settled()) {
      mqtt.disconnect();
      const long long awake = microseconds() - wake;
      printCounters(mqtt.counters());
      printf("slept awake_us=%lld\n", awake);
      return 0;
    }
    client.waitReadable(1);  // the next loop() when bytes arrive, or after 1 ms
  }
  if (sleepy) {
    printf("deadline\n");
    return 2;
  }
  mqtt.disconnect();
  printf("stopped\n");
  return 0;
}
