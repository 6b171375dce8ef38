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
// QoS 1 sends keep one message in flight: it is copied into the transport (at most
// BufferSize bytes), sent when connected (also when the send was made while disconnected) and
// sent again with DUP after a reconnect until the broker acknowledges it. A second send while
// one is in flight is refused (false) and counted as dropped.

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
        quietTime(250),
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
  uint16_t quietTime;        // ms with nothing arriving before settled() holds
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
  uint32_t dropped;     // sends refused: not connected (QoS 0), one in flight, too large
  uint32_t unknown;     // messages on a topic that is none of the inports'
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

  // Connected, announced, subscribed, nothing unacknowledged and nothing arrived for
  // quietTime ms: a sleepy sketch may disconnect() and sleep.
  bool settled() const;
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

 protected:
  MqttTransportBase(Client& client, const MqttConfig& config, mqtt::Decoder& decoder,
                    uint8_t* pending, size_t pendingCapacity);
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

  enum class Pending : uint8_t { None, Queued, Sent };

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
  void publishPending(bool dup);
  bool sent(unsigned long now);  // flushes; drops the connection when the write failed
  uint16_t nextPacketId();
  uint32_t jitter();

  Client& client_;
  MqttConfig config_;
  mqtt::Decoder& decoder_;
  uint8_t* pending_;
  size_t pendingCapacity_;
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
  Pending pendingState_;
  uint8_t pendingPort_;
  uint8_t subscriptionsUnacked_;
  mqtt::DecodeError lastError_;
  uint16_t pendingId_;
  uint16_t packetId_;
  size_t pendingLength_;
  uint32_t retryDelay_;  // ms before the next attempt after a failure; 0: at once
  uint32_t rng_;
  unsigned long retryAt_;
  unsigned long since_;  // when the state began
  unsigned long lastSent_;
  unsigned long lastArrival_;
  unsigned long lastAnnounce_;
  unsigned long pingSent_;
};

// An MQTT transport whose receive buffer and in-flight message each hold BufferSize bytes: the
// largest message it receives (topic and payload) and sends at QoS 1 (payload).
template <size_t BufferSize = 256>
class MqttTransport : public MqttTransportBase {
 public:
  MqttTransport(Client& client, const MqttConfig& config)
      : MqttTransportBase(client, config, decoder_, pending_, BufferSize) {}

 private:
  mqtt::StaticDecoder<BufferSize> decoder_;
  uint8_t pending_[BufferSize];
};

}  // namespace msgflo

#endif  // MSGFLO_MQTT_H
