// A participant straight on an MQTT broker (WiFi, Ethernet) as a Transport over any Arduino
// Client: MQTT 3.1.1 with fixed buffers and no heap, QoS 0 and 1, keepalive, clean or
// persistent sessions, and msgflo discovery on `fbp` (docs/protocol.md 2).
//
// The same sketch runs over the serial link or MQTT: only the transport object given to
// Participant::begin differs. What the transport does, in loop(), which never waits long:
//
// - connects at once, and after a failure or a lost connection retries after 1 s, 2 s, 4 s ...
//   up to 60 s, each delay jittered down to half so a room of boards does not retry in step
//   (a connection that stayed up 10 s starts the series afresh). Client::connect itself blocks
//   while the TCP handshake runs: that is the Arduino API, one attempt per loop() at most;
// - subscribes at QoS 1 to `<prefix><role>/<inport>` for each inport and acknowledges QoS 1
//   messages after their callback ran; publishes on `<prefix><role>/<outport>`
//   (msgflo-arduino's naming, docs/protocol.md 2.3);
// - announces on `fbp` after each connect and every discoveryPeriod / 2.2 s, with its
//   `discoveryPeriod`, so the coordinator expires it from its own period. The JSON is written
//   twice from the participant's tables: once to count its length, once into the PUBLISH: no
//   buffer holds it;
// - sends PINGREQ when it has sent nothing for the keepalive time, and drops the connection
//   when no PINGRESP comes within another keepalive time, or the broker sends anything malformed.
//
// QoS 1 sends go through a small queue of QueueSlots messages (4 by default), each copied into
// a slot of BufferSize bytes: all of them are published at once when connected (also those sent
// while disconnected, in order) and sent again with DUP after a reconnect until the broker
// acknowledges each. A send while every slot waits for its PUBACK is refused (false) and
// counted as dropped; so is QoS 0 while disconnected. No heap: the slots are members.
//
// settled() tells a sleepy sketch it may disconnect and sleep without leaving a message behind,
// with no fixed waiting time: it is a protocol barrier. TCP is ordered and a broker sends a
// resumed session's queued messages right after CONNACK, before it answers anything the client
// sends later; so once the SUBACKs of the subscriptions (sent on CONNACK) are in, every queued
// message the broker's in-flight window let go has arrived. The broker sends the rest only as
// PUBACKs free its window (Mosquitto: max_inflight_messages, 20): when at least brokerInflight
// messages arrived since the last barrier request, more may be waiting, and settled() sends a
// PINGREQ as a fresh barrier (after the PUBACKs, so the broker has released what they allowed
// before it answers) and holds until its PINGRESP, at most kMaxBarrierRounds times per
// connection; what is still queued then stays in the session for the next wake.

#ifndef MSGFLO_MQTT_H
#define MSGFLO_MQTT_H

#include <Arduino.h>
#include <Client.h>

#include "MsgfloJson.h"
#include "MsgfloMqttCodec.h"
#include "MsgfloParticipant.h"

namespace msgflo {

struct MqttConfig {
  MqttConfig()
      : host(0),
        port(1883),
        user(0),
        password(0),
        role(0),
        prefix(""),
        clientId(0),
        keepalive(30),
        cleanSession(true),
        discoveryPeriod(60),
        qos(1),
        brokerInflight(20),
        quietTime(0),
        retryMin(1000),
        retryMax(60000) {}

  // All strings stay where they are (RAM): they must outlive the transport.
  const char* host;          // a name or a dotted address
  uint16_t port;             // 1883; TLS with a WiFiClientSecure as the Client: 8883
  const char* user;          // null: none
  const char* password;      // null: none
  const char* role;          // the graph node it plays; null or empty: the component
  const char* prefix;        // put before every port topic ("" by default)
  const char* clientId;      // null: the participant's id, `<role>-<chip id>`
  uint16_t keepalive;        // seconds, 0: no keepalive
  bool cleanSession;         // false: persistent session, QoS 1 messages wait while it sleeps
  uint16_t discoveryPeriod;  // seconds; announced every period / 2.2
  uint8_t qos;               // of outport messages: 0 or 1
  uint8_t brokerInflight;    // the broker's in-flight window (Mosquitto's max_inflight_messages,
                             // 20 by default); 0: unknown, any message means one more barrier
  uint16_t quietTime;        // ms with nothing arriving before settled() holds (0: none)
  uint16_t retryMin;         // ms: the first retry's delay, doubled up to retryMax
  uint16_t retryMax;
};

struct MqttCounters {
  uint32_t attempts;    // Client::connect calls
  uint32_t connects;    // sessions the broker accepted
  uint32_t reconnects;  // accepted sessions after the first
  uint32_t lost;        // connections dropped: by the broker, the network, keepalive or us
  uint32_t refused;     // CONNACK or SUBACK refusals (bad user, not authorised)
  uint32_t malformed;   // packets that broke the protocol (the connection was dropped)
  uint32_t oversized;   // PUBLISHes larger than the buffer: acknowledged, not delivered
  uint32_t dropped;     // sends refused: not connected (QoS 0), every slot in flight, too large
  uint32_t unknown;     // messages on a topic that is none of the inports'
  uint32_t barriers;    // PINGREQs settled() sent to see that nothing more is queued
};

enum class MqttState : uint8_t {
  Idle,        // before begin(), after disconnect()
  Waiting,     // for the next connection attempt
  Connecting,  // TCP up, CONNECT sent, waiting for CONNACK
  Connected,
};

class MqttTransportBase : public Transport, private DescriptionExtras {
 public:
  static const size_t kMaxId = 64;
  static const size_t kMaxTopic = 128;

  void begin(Participant& participant) override;  // first connection attempt in loop()
  void loop() override;
  bool send(uint8_t outport, const link::ByteSource& payload) override;

  // Connected, announced, subscribed, every send acknowledged, the broker's queued messages
  // for this session delivered (the barrier above) and nothing arrived for quietTime ms: a
  // sleepy sketch may disconnect() and sleep. Not const: it may send the barrier's PINGREQ.
  bool settled();
  // Sends DISCONNECT and closes the connection; nothing reconnects until resume().
  void disconnect();
  void resume();
  // The last connection error that dropped it (decoder's view), for a sketch's log.
  mqtt::DecodeError lastError() const { return lastError_; }
  MqttState state() const { return state_; }
  bool connected() const { return state_ == MqttState::Connected; }
  // False when begin() found the id or a topic too long: it never connects.
  bool configured() const { return configured_; }
  const MqttCounters& counters() const { return counters_; }
  const char* id() const { return id_; }
  // QoS 1 messages queued or waiting for their PUBACK.
  uint8_t unacknowledged() const { return count_; }

  static const uint8_t kMaxBarrierRounds = 16;

  enum class Pending : uint8_t { Free, Queued, Sent, Acked };
  struct Slot {
    uint16_t packetId;
    uint16_t length;
    uint8_t port;
    Pending state;
  };

 protected:
  MqttTransportBase(Client& client, const MqttConfig& config, mqtt::Decoder& decoder, Slot* slots,
                    uint8_t* data, uint8_t slotCount, size_t slotSize);
  ~MqttTransportBase() {}

 private:
  // Packets go out through a small chunk buffer: a Client write is a TCP segment on most
  // boards, too dear for a byte.
  class Output : public mqtt::ByteSink, public JsonSink {
   public:
    explicit Output(Client& client) : client_(client), length_(0), failed_(false) {}
    void put(uint8_t byte) override;
    void put(char c) override { put(static_cast<uint8_t>(c)); }
    bool flush();  // false when the Client took less than it was given since the last reset
    void reset() {
      length_ = 0;
      failed_ = false;
    }

   private:
    Client& client_;
    uint8_t data_[64];
    uint8_t length_;
    bool failed_;
  };

  // What settled() waits for: the SUBACKs sent on CONNACK, or its own PINGREQ's PINGRESP.
  enum class Barrier : uint8_t { Clear, Subscribing, Pinging };

  // DescriptionExtras: id and role first, each port's queue, the period last.
  void head(JsonWriter& json) const override;
  void port(JsonWriter& json, bool inport, FlashText id) const override;
  void tail(JsonWriter& json) const override;

  void attempt(unsigned long now);
  void receive(unsigned long now);
  void handle(const mqtt::Packet& packet, unsigned long now);
  void handlePublish(const mqtt::Packet& packet);
  void onConnack(const mqtt::Packet& packet, unsigned long now);
  void keepalive(unsigned long now);
  void drop(unsigned long now);
  void scheduleRetry(unsigned long now);
  void announce();
  void writeDiscovery(JsonSink& sink) const;
  Slot& slotAt(uint8_t nth) { return slots_[(head_ + nth) % slotCount_]; }
  uint8_t* dataOf(const Slot& slot) { return data_ + (&slot - slots_) * slotSize_; }
  void publishSlot(Slot& slot, bool dup);
  void onPuback(uint16_t packetId);
  void release();  // frees acknowledged slots from the oldest on
  void writePing(unsigned long now);
  bool sent(unsigned long now);  // flushes; drops the connection when the write failed
  uint16_t nextPacketId();
  uint32_t jitter();

  Client& client_;
  MqttConfig config_;
  mqtt::Decoder& decoder_;
  Slot* slots_;
  uint8_t* data_;
  uint8_t slotCount_;
  size_t slotSize_;
  uint8_t head_;   // the oldest slot in use
  uint8_t count_;  // slots in use from head_ on (in send order)
  Participant* participant_;
  Output out_;
  MqttCounters counters_;
  char id_[kMaxId];
  const char* role_;  // not NUL-terminated when it is the start of id_
  size_t roleLength_;
  MqttState state_;
  bool configured_;
  bool announced_;
  bool pingOutstanding_;
  Barrier barrier_;
  uint8_t barrierRounds_;  // PINGREQ barriers on this connection
  uint8_t pingsUnanswered_;
  uint8_t barrierPings_;  // PINGRESPs still due before the barrier's own
  uint8_t subscriptionsUnacked_;
  uint16_t arrivedSinceBarrier_;  // QoS 1 PUBLISHes since the last barrier request went out
  mqtt::DecodeError lastError_;
  uint16_t packetId_;
  uint32_t retryDelay_;  // ms before the next attempt after a failure; 0: at once
  uint32_t rng_;
  unsigned long retryAt_;
  unsigned long since_;  // when the state began
  unsigned long lastSent_;
  unsigned long lastArrival_;
  unsigned long lastAnnounce_;
  unsigned long pingSent_;
};

// An MQTT transport whose receive buffer and QoS 1 send slots each hold BufferSize bytes: the
// largest message it receives (topic and payload) and sends at QoS 1 (payload); QueueSlots
// QoS 1 messages may wait for their PUBACK at once. RAM: about 390 B + (1 + QueueSlots) *
// BufferSize (ESP8266: 1,684 B for <256, 4>, 900 B for <256, 1>).
template <size_t BufferSize = 256, uint8_t QueueSlots = 4>
class MqttTransport : public MqttTransportBase {
  static_assert(QueueSlots >= 1, "at least one QoS 1 slot");
  static_assert(BufferSize <= 0xFFFF, "a slot's length is 16 bits");

 public:
  MqttTransport(Client& client, const MqttConfig& config)
      : MqttTransportBase(client, config, decoder_, slots_, data_, QueueSlots, BufferSize) {}

 private:
  mqtt::StaticDecoder<BufferSize> decoder_;
  Slot slots_[QueueSlots];
  uint8_t data_[QueueSlots * BufferSize];
};

}  // namespace msgflo

#endif  // MSGFLO_MQTT_H
