// A fake of the parts of the Arduino core the library uses, for host tests: Print and Stream
// (the abstract byte sink and source), millis() driven by the test, PROGMEM as plain memory.
// Only what the library touches is here; a test that needs more adds it here, not in src/.

#ifndef MSGFLO_FAKE_ARDUINO_H
#define MSGFLO_FAKE_ARDUINO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// Flash strings as on the real cores: F() gives a distinct pointer type, so overloads for RAM
// and flash text are told apart on the host as on an AVR.
class __FlashStringHelper;
#define PROGMEM
#define PSTR(text) (text)
#define F(text) (reinterpret_cast<const __FlashStringHelper*>(PSTR(text)))
#define pgm_read_byte(address) (*reinterpret_cast<const uint8_t*>(address))

class Print {
 public:
  virtual ~Print() {}
  virtual size_t write(uint8_t byte) = 0;
  virtual size_t write(const uint8_t* data, size_t length) {
    size_t written = 0;
    while (length--) {
      written += write(*data++);
    }
    return written;
  }
  size_t print(const char* text) {
    return write(reinterpret_cast<const uint8_t*>(text), strlen(text));
  }
  virtual void flush() {}
};

class Stream : public Print {
 public:
  virtual int available() = 0;
  virtual int read() = 0;
  virtual int peek() = 0;
};

unsigned long millis();

// Pins, for running the examples on the host: outputs are recorded, inputs set by the test.
#define LOW 0
#define HIGH 1
#define INPUT 0
#define OUTPUT 1
#define INPUT_PULLUP 2
#define LED_BUILTIN 13
#define A0 14
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t value);
int digitalRead(uint8_t pin);
int analogRead(uint8_t pin);

namespace fake {

// The time millis() returns; tests move it forward explicitly.
void setMillis(unsigned long now);
void advanceMillis(unsigned long delta);

// A Print that keeps what was written (up to Capacity bytes; more is counted as overflow).
template <size_t Capacity>
class BufferPrint : public Print {
 public:
  size_t write(uint8_t byte) override {
    ++writes_;
    if (length_ == Capacity) {
      overflowed_ = true;
      return 0;
    }
    data_[length_++] = byte;
    return 1;
  }
  const uint8_t* data() const { return data_; }
  size_t length() const { return length_; }
  size_t writes() const { return writes_; }
  bool overflowed() const { return overflowed_; }
  void clear() {
    length_ = writes_ = 0;
    overflowed_ = false;
  }

 private:
  uint8_t data_[Capacity] = {};
  size_t length_ = 0;
  size_t writes_ = 0;
  bool overflowed_ = false;
};

// A Stream that plays back scripted bytes and records what is written to it.
template <size_t Capacity>
class ScriptedStream : public Stream {
 public:
  void script(const uint8_t* data, size_t length) {
    for (size_t i = 0; i < length && inLength_ < Capacity; ++i) {
      in_[inLength_++] = data[i];
    }
  }
  int available() override { return static_cast<int>(inLength_ - inPos_); }
  int read() override { return inPos_ < inLength_ ? in_[inPos_++] : -1; }
  int peek() override { return inPos_ < inLength_ ? in_[inPos_] : -1; }
  size_t write(uint8_t byte) override { return out_.write(byte); }
  const BufferPrint<Capacity>& written() const { return out_; }

 private:
  uint8_t in_[Capacity] = {};
  size_t inLength_ = 0;
  size_t inPos_ = 0;
  BufferPrint<Capacity> out_;
};

const uint8_t kPins = 20;
uint8_t pinModeOf(uint8_t pin);
uint8_t outputOf(uint8_t pin);          // what digitalWrite set
void setInput(uint8_t pin, int value);  // what digitalRead and analogRead return

// The board's Serial: a scripted stream with begin().
class SerialPort : public ScriptedStream<8192> {
 public:
  void begin(unsigned long baud) { baud_ = baud; }
  unsigned long baud() const { return baud_; }

 private:
  unsigned long baud_ = 0;
};

}  // namespace fake

extern fake::SerialPort Serial;

#endif  // MSGFLO_FAKE_ARDUINO_H
