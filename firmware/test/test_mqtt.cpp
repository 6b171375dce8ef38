// The MQTT transport over a scripted Client, the test playing the broker with the fake
// millis(): connect, subscriptions, discovery, messages both ways, QoS 1 in flight and its DUP
// retransmission, keepalive, backoff, malformed and oversized packets, sleepy sketches.

#include <doctest/doctest.h>

#include "Arduino.h"
#include "FakeClient.h"
#include "Msgflo.h"
#include "MsgfloMqtt.h"

using namespace msgflo;
using mqtt::PacketType;

namespace {

struct Seen {
  uint8_t header;
  uint8_t body[4096];
  size_t length;
  PacketType type() const { return static_cast<PacketType>(header >> 4); }
  uint16_t u16(size_t at) const { return static_cast<uint16_t>(body[at] << 8 | body[at + 1]); }
  // PUBLISH
  bool topicIs(const char* topic) const {
    return u16(0) == strlen(topic) && memcmp(body + 2, topic, strlen(topic)) == 0;
  }
  size_t payloadAt() const { return 2 + u16(0) + ((header & 0x06) ? 2 : 0); }
  bool payloadIs(const char* text) const {
    return length - payloadAt() == strlen(text) &&
           memcmp(body + payloadAt(), text, strlen(text)) == 0;
  }
};

struct Inbox {
  int calls = 0;
  char text[300] = {};
};

void remember(const uint8_t* payload, size_t length, void* context) {
  Inbox& inbox = *static_cast<Inbox*>(context);
  ++inbox.calls;
  memcpy(inbox.text, payload, length);
  inbox.text[length] = 0;
}

MqttConfig config(const char* role = "sensor") {
  MqttConfig c;
  c.host = "broker.local";
  c.user = "dev";
  c.password = "secret";
  c.role = role;
  c.prefix = "kit/";
  return c;
}

struct Rig {
  fake::FakeClient client;
  MqttTransport<128> mqtt;
  StaticParticipant<2, 1> participant{F("Thermo")};
  Inbox in, led;
  Outport out;
  size_t readPos = 0;

  explicit Rig(const MqttConfig& c = config()) : mqtt(client, c) {
    fake::setMillis(1000);
    participant.setLabel(F("A \"quoted\" label"));
    participant.setChipId("a1b2");
    REQUIRE(participant.inport(F("interval"), F("number"), remember, &in));
    REQUIRE(participant.inport(F("led"), F("boolean"), remember, &led));
    out = participant.outport(F("temperature"), F("number"));
    participant.begin(mqtt);
  }

  void script(const uint8_t* data, size_t length) { client.script(data, length); }
  template <size_t N>
  void broker(const uint8_t (&data)[N]) {
    client.script(data, N);
    participant.loop();
  }

  // The next packet the transport wrote; REQUIREs there is one.
  Seen next() {
    Seen seen = {};
    REQUIRE(readPos + 2 <= client.outLength);
    seen.header = client.out[readPos++];
    uint32_t length = 0, multiplier = 1;
    uint8_t byte;
    do {
      REQUIRE(readPos < client.outLength);
      byte = client.out[readPos++];
      length += (byte & 0x7F) * multiplier;
      multiplier *= 128;
    } while (byte & 0x80);
    REQUIRE(length <= sizeof seen.body);
    REQUIRE(readPos + length <= client.outLength);
    memcpy(seen.body, client.out + readPos, length);
    seen.length = length;
    readPos += length;
    return seen;
  }
  bool idle() const { return readPos == client.outLength; }

  // Through CONNECT, CONNACK, both SUBSCRIBEs and the discovery; the SUBACKs are left in
  // `subacks` for the test to send.
  void connectHolding(bool sessionPresent = false) {
    participant.loop();
    REQUIRE(client.up);
    REQUIRE(next().type() == PacketType::Connect);
    const uint8_t connack[] = {0x20, 2, static_cast<uint8_t>(sessionPresent ? 1 : 0), 0};
    broker(connack);
    REQUIRE(mqtt.connected());
    const Seen a = next(), b = next();
    REQUIRE(a.type() == PacketType::Subscribe);
    REQUIRE(b.type() == PacketType::Subscribe);
    const uint8_t both[] = {0x90, 3, a.body[0], a.body[1], 1, 0x90, 3, b.body[0], b.body[1], 1};
    memcpy(subacks, both, sizeof both);
    REQUIRE(next().topicIs("fbp"));
  }
  // ... and the SUBACKs.
  void connect(bool sessionPresent = false) {
    connectHolding(sessionPresent);
    broker(subacks);
  }

  // A QoS 1 PUBLISH to the `interval` inport with packet id `id`, byte by byte as the broker
  // sends it (not through the codec under test); the test loops the participant.
  void deliver(uint16_t id, const char* payload) {
    static const char kTopic[] = "kit/sensor/interval";
    const size_t topicLength = sizeof kTopic - 1, payloadLength = strlen(payload);
    uint8_t publish[64];
    REQUIRE(4 + topicLength + 2 + payloadLength <= sizeof publish);
    size_t n = 0;
    publish[n++] = 0x32;
    publish[n++] = static_cast<uint8_t>(2 + topicLength + 2 + payloadLength);
    publish[n++] = 0;
    publish[n++] = static_cast<uint8_t>(topicLength);
    memcpy(publish + n, kTopic, topicLength);
    n += topicLength;
    publish[n++] = static_cast<uint8_t>(id >> 8);
    publish[n++] = static_cast<uint8_t>(id & 0xFF);
    memcpy(publish + n, payload, payloadLength);
    client.script(publish, n + payloadLength);
  }
  uint8_t subacks[10] = {};
};

const uint8_t kPingresp[] = {0xD0, 0};

// The PUBACK for a QoS 1 PUBLISH the transport wrote.
struct Puback {
  uint8_t bytes[4];
  explicit Puback(const Seen& publish)
      : bytes{0x40, 2, publish.body[publish.payloadAt() - 2],
              publish.body[publish.payloadAt() - 1]} {}
};

const char kDiscovery[] =
    "{\"protocol\":\"discovery\",\"command\":\"participant\",\"payload\":{\"id\":\"sensor-a1b2\","
    "\"role\":\"sensor\",\"component\":\"Thermo\",\"label\":\"A \\\"quoted\\\" label\","
    "\"inports\":[{\"id\":\"interval\",\"type\":\"number\",\"queue\":\"kit/sensor/interval\"},"
    "{\"id\":\"led\",\"type\":\"boolean\",\"queue\":\"kit/sensor/led\"}],\"outports\":[{\"id\":"
    "\"temperature\",\"type\":\"number\",\"queue\":\"kit/sensor/temperature\"}],"
    "\"discoveryPeriod\":60}}";

}  // namespace

TEST_CASE("mqtt: connects at once with the role-based id, subscribes at QoS 1, announces") {
  Rig rig;
  CHECK(rig.mqtt.configured());
  CHECK(strcmp(rig.mqtt.id(), "sensor-a1b2") == 0);
  rig.participant.loop();
  CHECK(rig.client.connects == 1);
  CHECK(strcmp(rig.client.lastHost, "broker.local") == 0);
  CHECK(rig.client.lastPort == 1883);
  const Seen connect = rig.next();
  REQUIRE(connect.type() == PacketType::Connect);
  const uint8_t head[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0xC2, 0, 30, 0, 11};
  CHECK(memcmp(connect.body, head, sizeof head) == 0);
  CHECK(memcmp(connect.body + 12, "sensor-a1b2", 11) == 0);
  CHECK(rig.mqtt.state() == MqttState::Connecting);
  CHECK(rig.idle());

  const uint8_t connack[] = {0x20, 2, 0, 0};
  rig.broker(connack);
  CHECK(rig.mqtt.connected());
  const Seen sub1 = rig.next(), sub2 = rig.next();
  CHECK(sub1.header == 0x82);
  CHECK(sub1.length == 2 + 2 + strlen("kit/sensor/interval") + 1);
  CHECK(memcmp(sub1.body + 4, "kit/sensor/interval", 19) == 0);
  CHECK(sub1.body[sub1.length - 1] == 1);
  CHECK(memcmp(sub2.body + 4, "kit/sensor/led", 14) == 0);
  CHECK(sub1.u16(0) != sub2.u16(0));
  const Seen discovery = rig.next();
  CHECK(discovery.header == 0x30);  // QoS 0, not retained
  CHECK(discovery.topicIs("fbp"));
  CHECK(discovery.payloadIs(kDiscovery));
  CHECK(rig.idle());
}

TEST_CASE("mqtt: the role defaults to the component; no chip id, the id is the role") {
  MqttConfig c = config(nullptr);
  c.prefix = "";
  fake::FakeClient client;
  MqttTransport<> mqtt(client, c);
  StaticParticipant<1, 0> participant(F("Lamp"));
  participant.inport(F("on"), F("boolean"), nullptr);
  participant.begin(mqtt);
  CHECK(strcmp(mqtt.id(), "Lamp") == 0);
  participant.loop();
  const uint8_t connack[] = {0x20, 2, 0, 0};
  client.script(connack, sizeof connack);
  participant.loop();
  CHECK(memmem(client.out, client.outLength, "Lamp/on", 7) != nullptr);
  CHECK(memmem(client.out, client.outLength, "\"role\":\"Lamp\"", 13) != nullptr);
}

TEST_CASE("mqtt: messages to inports reach their callbacks and QoS 1 ones are acknowledged") {
  Rig rig;
  rig.connect();
  rig.deliver(0x0102, "5000");
  rig.participant.loop();
  CHECK(rig.in.calls == 1);
  CHECK(strcmp(rig.in.text, "5000") == 0);
  const Seen puback = rig.next();
  CHECK(puback.type() == PacketType::Puback);
  CHECK(puback.u16(0) == 0x0102);
  const uint8_t qos0[] = {0x30, 2 + 14 + 4, 0,   14,  'k', 'i', 't', '/', 's', 'e', 'n',
                          's',  'o',        'r', '/', 'l', 'e', 'd', 't', 'r', 'u', 'e'};
  rig.broker(qos0);
  CHECK(rig.led.calls == 1);
  CHECK(strcmp(rig.led.text, "true") == 0);
  CHECK(rig.idle());  // no PUBACK at QoS 0
  const uint8_t elsewhere[] = {0x32, 2 + 5 + 2 + 1, 0, 5, 'o', 't', 'h', 'e', 'r', 0, 7, 'x'};
  rig.broker(elsewhere);
  CHECK(rig.mqtt.counters().unknown == 1);
  CHECK(rig.next().u16(0) == 7);  // acknowledged all the same
}

TEST_CASE("mqtt: QoS 1 sends queue in QueueSlots slots, all in flight; DUP after a reconnect") {
  Rig rig;
  rig.connect();
  CHECK(rig.out.sendDecimal(21.5f, 1));
  CHECK(rig.out.sendInteger(2));
  CHECK(rig.out.send("three"));
  CHECK(rig.out.send("four"));
  CHECK(rig.mqtt.unacknowledged() == 4);
  CHECK_FALSE(rig.out.send("five"));  // every slot waits for its PUBACK
  CHECK(rig.mqtt.counters().dropped == 1);
  Seen sent[4];
  uint16_t ids[4];
  const char* payloads[] = {"21.5", "2", "three", "four"};
  for (int i = 0; i < 4; ++i) {
    sent[i] = rig.next();
    CHECK(sent[i].header == 0x32);
    CHECK(sent[i].topicIs("kit/sensor/temperature"));
    CHECK(sent[i].payloadIs(payloads[i]));
    ids[i] = sent[i].u16(sent[i].payloadAt() - 2);
    for (int j = 0; j < i; ++j) CHECK(ids[i] != ids[j]);
  }
  CHECK(rig.idle());
  // The second is acknowledged before the first: its slot frees with the first.
  rig.broker(Puback(sent[1]).bytes);
  CHECK(rig.mqtt.unacknowledged() == 4);
  CHECK_FALSE(rig.out.send("five"));
  rig.broker(Puback(sent[0]).bytes);
  CHECK(rig.mqtt.unacknowledged() == 2);
  CHECK(rig.out.send("five"));
  const Seen fifth = rig.next();
  CHECK(fifth.payloadIs("five"));
  CHECK_FALSE(rig.mqtt.settled());

  rig.client.up = false;  // the connection is lost before the other PUBACKs
  rig.participant.loop();
  CHECK(rig.mqtt.counters().lost == 1);
  CHECK(rig.out.send("six"));  // queued while disconnected
  fake::advanceMillis(1000);   // the first retry comes within 1 s
  rig.connect(true);
  const char* again[] = {"three", "four", "five", "six"};
  Seen resent[4];
  for (int i = 0; i < 4; ++i) {
    resent[i] = rig.next();
    CHECK(resent[i].payloadIs(again[i]));
    CHECK(resent[i].header == (i < 3 ? 0x3A : 0x32));  // DUP for those sent before
  }
  CHECK(resent[0].u16(resent[0].payloadAt() - 2) == ids[2]);
  CHECK(resent[1].u16(resent[1].payloadAt() - 2) == ids[3]);
  CHECK(rig.mqtt.counters().reconnects == 1);
  for (int i = 0; i < 4; ++i) rig.broker(Puback(resent[i]).bytes);
  CHECK(rig.mqtt.unacknowledged() == 0);
  CHECK(rig.mqtt.settled());
}

namespace {
Outport echoOut;
void echo(const uint8_t* payload, size_t length, void*) {
  echoOut.sendBytes(payload, length);
}
}  // namespace

TEST_CASE("mqtt: a callback that echoes while the sketch's own send is in flight loses nothing") {
  fake::FakeClient client;
  MqttConfig c = config("echo");
  MqttTransport<64, 2> mqtt(client, c);
  StaticParticipant<1, 1> participant(F("Echo"));
  participant.inport(F("in"), F("string"), echo);
  echoOut = participant.outport(F("out"), F("string"));
  participant.begin(mqtt);
  participant.loop();
  const uint8_t connack[] = {0x20, 2, 0, 0};
  client.script(connack, sizeof connack);
  participant.loop();
  CHECK(echoOut.send("mine"));
  const uint8_t publish[] = {
      0x32, 2 + 11 + 2 + 2, 0, 11, 'k', 'i', 't', '/', 'e', 'c', 'h', 'o', '/', 'i', 'n', 0, 9, 'h',
      'i'};
  client.script(publish, sizeof publish);
  participant.loop();
  CHECK(mqtt.unacknowledged() == 2);
  CHECK(mqtt.counters().dropped == 0);
  // Both PUBLISHes on `out` (the topic with its length, not the discovery's queue): "mine",
  // then the echo "hi", each after its 2-byte packet id.
  const char topic[] = "\x00\x0ckit/echo/out";
  const uint8_t* first =
      static_cast<const uint8_t*>(memmem(client.out, client.outLength, topic, 14));
  REQUIRE(first != nullptr);
  CHECK(memcmp(first + 16, "mine", 4) == 0);
  const size_t rest = client.outLength - static_cast<size_t>(first + 14 - client.out);
  const uint8_t* second = static_cast<const uint8_t*>(memmem(first + 14, rest, topic, 14));
  REQUIRE(second != nullptr);
  CHECK(memcmp(second + 16, "hi", 2) == 0);
  const uint8_t puback[] = {0x40, 2, 0, 9};
  CHECK(memmem(client.out, client.outLength, puback, sizeof puback) != nullptr);
}

TEST_CASE("mqtt: a send while disconnected waits for the connection (QoS 1); QoS 0 refuses") {
  Rig rig;
  CHECK(rig.out.send("early"));
  rig.connect();
  const Seen sent = rig.next();
  CHECK(sent.header == 0x32);  // a first transmission: no DUP
  CHECK(sent.payloadIs("early"));

  MqttConfig c = config();
  c.qos = 0;
  Rig zero(c);
  CHECK_FALSE(zero.out.send("lost"));
  CHECK(zero.mqtt.counters().dropped == 1);
  zero.connect();
  CHECK(zero.out.send("now"));
  const Seen now = zero.next();
  CHECK(now.header == 0x30);
  CHECK(now.payloadIs("now"));
}

TEST_CASE("mqtt: a payload larger than the buffer is refused, never cut") {
  Rig rig;
  rig.connect();
  uint8_t big[129] = {};
  CHECK_FALSE(rig.out.sendBytes(big, sizeof big));
  CHECK(rig.out.sendBytes(big, 128));
}

TEST_CASE("mqtt: retries at once, then after 1, 2, 4 ... 60 s, jittered down to half") {
  Rig rig;
  rig.client.accept = false;
  rig.participant.loop();
  CHECK(rig.client.connects == 1);
  uint32_t expected = 1000;
  for (int attempt = 2; attempt <= 12; ++attempt) {
    const unsigned long start = millis();
    int waited = 0;
    while (rig.client.connects < attempt && waited < 70000) {
      fake::advanceMillis(10);
      waited += 10;
      rig.participant.loop();
    }
    const unsigned long delay = millis() - start;
    INFO("attempt " << attempt << " after " << delay << " ms");
    CHECK(delay >= expected / 2);
    CHECK(delay <= expected + 10);
    expected = expected * 2 > 60000 ? 60000 : expected * 2;
  }
  CHECK(rig.mqtt.counters().attempts == 12);
  rig.client.accept = true;
  fake::advanceMillis(60000);
  rig.connect();
  CHECK(rig.mqtt.counters().connects == 1);
}

TEST_CASE("mqtt: PINGREQ after a quiet keepalive; no PINGRESP within another one drops it") {
  MqttConfig c = config();
  c.discoveryPeriod = 600;
  Rig rig(c);
  rig.connect();
  fake::advanceMillis(29000);
  rig.participant.loop();
  CHECK(rig.idle());
  fake::advanceMillis(1000);
  rig.participant.loop();
  CHECK(rig.next().header == 0xC0);
  const uint8_t pingresp[] = {0xD0, 0};
  rig.broker(pingresp);
  fake::advanceMillis(30000);
  rig.participant.loop();
  CHECK(rig.next().header == 0xC0);
  fake::advanceMillis(29999);
  rig.participant.loop();
  CHECK(rig.mqtt.connected());
  fake::advanceMillis(1);
  rig.participant.loop();
  CHECK_FALSE(rig.mqtt.connected());
  CHECK(rig.mqtt.counters().lost == 1);
  CHECK(rig.client.stops == 1);
}

TEST_CASE("mqtt: announces again every period / 2.2") {
  Rig rig;
  rig.connect();
  for (int i = 0; i < 3; ++i) {
    fake::advanceMillis(27272);
    rig.participant.loop();
    const Seen ping = rig.next();  // nothing sent for 27 s: the keepalive of 30 s is not due
    CHECK(ping.topicIs("fbp"));
    CHECK(ping.payloadIs(kDiscovery));
    CHECK(rig.idle());
  }
}

TEST_CASE("mqtt: a malformed packet drops the connection, counted; it connects again") {
  Rig rig;
  rig.connect();
  const uint8_t pubrel[] = {0x62, 2, 0, 1};
  rig.broker(pubrel);
  CHECK(rig.mqtt.counters().malformed == 1);
  CHECK(rig.mqtt.lastError() == mqtt::DecodeError::BadType);
  CHECK(rig.client.stops == 1);
  fake::advanceMillis(1000);
  rig.connect();
  CHECK(rig.mqtt.counters().reconnects == 1);
  const uint8_t truncatedTopic[] = {0x30, 4, 0, 9, 'a', 'b'};
  rig.broker(truncatedTopic);
  CHECK(rig.mqtt.counters().malformed == 2);
  CHECK(rig.mqtt.lastError() == mqtt::DecodeError::BadTopic);
  fake::advanceMillis(2000);
  rig.connect();
  const uint8_t secondConnack[] = {0x20, 2, 0, 0};
  rig.broker(secondConnack);
  CHECK(rig.mqtt.counters().malformed == 3);
}

TEST_CASE("mqtt: anything but CONNACK first, a refused CONNACK, no CONNACK in time") {
  Rig rig;
  rig.participant.loop();
  const uint8_t pingresp[] = {0xD0, 0};
  rig.broker(pingresp);
  CHECK(rig.mqtt.counters().malformed == 1);
  fake::advanceMillis(1000);
  rig.participant.loop();
  const uint8_t refused[] = {0x20, 2, 0, 5};
  rig.broker(refused);
  CHECK(rig.mqtt.counters().refused == 1);
  CHECK(rig.mqtt.state() == MqttState::Waiting);
  fake::advanceMillis(2000);
  rig.participant.loop();
  CHECK(rig.mqtt.state() == MqttState::Connecting);
  fake::advanceMillis(10000);
  rig.participant.loop();
  CHECK(rig.mqtt.state() == MqttState::Waiting);
  CHECK(rig.mqtt.counters().lost == 3);
  CHECK(rig.mqtt.counters().connects == 0);
}

TEST_CASE("mqtt: an oversized message is acknowledged and counted, not delivered") {
  Rig rig;
  rig.connect();
  uint8_t big[3 + 2 + 14 + 2 + 200] = {0x32, 0xDA, 0x01, 0,   14,  'k', 'i', 't', '/',  's', 'e',
                                       'n',  's',  'o',  'r', '/', 'l', 'e', 'd', 0x00, 0x33};
  rig.broker(big);
  CHECK(rig.led.calls == 0);
  CHECK(rig.mqtt.counters().oversized == 1);
  CHECK(rig.next().u16(0) == 0x33);
  CHECK(rig.mqtt.connected());
}

TEST_CASE("mqtt: settled once the SUBACKs are in and every send is acknowledged, no wait") {
  Rig rig;
  rig.connectHolding(true);
  CHECK_FALSE(rig.mqtt.settled());  // the SUBACKs are the barrier
  // The session's queued messages come before the SUBACKs (fewer than the broker's window).
  rig.deliver(1, "1");
  rig.deliver(2, "2");
  rig.deliver(3, "3");
  rig.participant.loop();
  CHECK(rig.in.calls == 3);
  CHECK_FALSE(rig.mqtt.settled());
  rig.broker(rig.subacks);
  CHECK(rig.mqtt.settled());  // at once: no quiet time, no extra round trip
  CHECK(rig.mqtt.counters().barriers == 0);
  CHECK(rig.out.send("x"));
  CHECK_FALSE(rig.mqtt.settled());
  for (int i = 0; i < 3; ++i) CHECK(rig.next().type() == PacketType::Puback);
  const Seen sent = rig.next();
  rig.broker(Puback(sent).bytes);
  CHECK(rig.mqtt.settled());
  rig.mqtt.disconnect();
  CHECK(rig.next().header == 0xE0);
  CHECK(rig.mqtt.state() == MqttState::Idle);
  CHECK_FALSE(rig.client.up);
  fake::advanceMillis(100000);
  rig.participant.loop();
  CHECK(rig.client.connects == 1);
  rig.mqtt.resume();
  rig.connect();
  CHECK(rig.client.connects == 2);
}

TEST_CASE("mqtt: a full window before the barrier's answer: a PINGREQ barrier after the PUBACKs") {
  MqttConfig c = config();
  c.brokerInflight = 2;
  Rig rig(c);
  rig.connectHolding(true);
  rig.deliver(1, "1");
  rig.deliver(2, "2");  // the window is full: more may wait for these PUBACKs
  rig.broker(rig.subacks);
  CHECK(rig.next().type() == PacketType::Puback);
  CHECK(rig.next().type() == PacketType::Puback);
  CHECK_FALSE(rig.mqtt.settled());
  CHECK(rig.next().header == 0xC0);  // the fresh barrier, behind the PUBACKs
  CHECK(rig.mqtt.counters().barriers == 1);
  CHECK_FALSE(rig.mqtt.settled());  // until its PINGRESP
  CHECK(rig.idle());
  rig.deliver(3, "3");  // released by the PUBACKs, before the PINGRESP
  rig.broker(kPingresp);
  CHECK(rig.in.calls == 3);
  CHECK(rig.next().type() == PacketType::Puback);
  CHECK(rig.mqtt.settled());  // one arrived, less than the window: nothing more is held
  CHECK(rig.mqtt.counters().barriers == 1);
  CHECK(rig.idle());
}

TEST_CASE("mqtt: the barrier's PINGRESP is its own, not a keepalive PINGREQ's before it") {
  MqttConfig c = config();
  c.brokerInflight = 0;  // unknown window: any message means one more round
  c.discoveryPeriod = 600;
  Rig rig(c);
  rig.connect(true);
  fake::advanceMillis(30000);
  rig.participant.loop();
  CHECK(rig.next().header == 0xC0);  // keepalive
  rig.deliver(1, "1");
  rig.participant.loop();
  CHECK(rig.next().type() == PacketType::Puback);
  CHECK_FALSE(rig.mqtt.settled());
  CHECK(rig.next().header == 0xC0);  // the barrier
  rig.broker(kPingresp);             // the keepalive's answer
  CHECK_FALSE(rig.mqtt.settled());
  rig.broker(kPingresp);
  CHECK(rig.mqtt.settled());
}

TEST_CASE("mqtt: barrier rounds are bounded; the rest stays in the session for the next wake") {
  MqttConfig c = config();
  c.brokerInflight = 1;
  Rig rig(c);
  rig.connect(true);
  uint8_t id = 1;
  for (int round = 0; round < MqttTransportBase::kMaxBarrierRounds; ++round) {
    rig.deliver(id++, "1");
    rig.participant.loop();
    CHECK(rig.next().type() == PacketType::Puback);
    CHECK_FALSE(rig.mqtt.settled());
    CHECK(rig.next().header == 0xC0);
    rig.broker(kPingresp);
  }
  rig.deliver(id++, "1");
  rig.participant.loop();
  CHECK(rig.next().type() == PacketType::Puback);
  CHECK(rig.mqtt.settled());
  CHECK(rig.mqtt.counters().barriers == MqttTransportBase::kMaxBarrierRounds);
}

TEST_CASE("mqtt: an optional quiet time after the barrier") {
  MqttConfig c = config();
  c.quietTime = 200;
  Rig rig(c);
  rig.connect();
  CHECK_FALSE(rig.mqtt.settled());
  fake::advanceMillis(199);
  CHECK_FALSE(rig.mqtt.settled());
  fake::advanceMillis(1);
  CHECK(rig.mqtt.settled());
}

TEST_CASE("mqtt: a persistent session and no user: CONNECT flags") {
  MqttConfig c = config();
  c.cleanSession = false;
  c.user = nullptr;
  c.keepalive = 0;
  Rig rig(c);
  rig.participant.loop();
  const Seen connect = rig.next();
  CHECK(connect.body[7] == 0x00);
  CHECK(connect.u16(8) == 0);
}

TEST_CASE("mqtt: a role too long for the id is refused at begin: it never connects") {
  char role[80];
  memset(role, 'r', sizeof role - 1);
  role[sizeof role - 1] = 0;
  Rig rig(config(role));
  CHECK_FALSE(rig.mqtt.configured());
  rig.participant.loop();
  CHECK(rig.client.connects == 0);
}

// The same sketch code over either transport: only the object given to begin differs.
namespace {
Inbox sketchInbox;
void sketchSetup(Participant& participant, Transport& transport) {
  participant.setComponent(F("Echoer"));
  participant.inport(F("in"), F("string"), remember, &sketchInbox);
  participant.outport(F("out"), F("string"));
  participant.begin(transport);
}
}  // namespace

TEST_CASE("mqtt: the same sketch runs over the serial link or MQTT") {
  fake::ScriptedStream<1024> serial;
  SerialLink<> link(serial);
  StaticParticipant<1, 1> overSerial;
  sketchSetup(overSerial, link);
  CHECK(serial.written().length() > 0);  // the hello

  fake::FakeClient client;
  MqttTransport<> mqtt(client, config("echo"));
  StaticParticipant<1, 1> overMqtt;
  sketchSetup(overMqtt, mqtt);
  overMqtt.loop();
  CHECK(client.connects == 1);
}
