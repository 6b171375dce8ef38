// The test-controlled clock behind the fake millis(), pins and the board's Serial.

#include "Arduino.h"

namespace {
unsigned long now_ = 0;
uint8_t modes_[fake::kPins] = {};
uint8_t outputs_[fake::kPins] = {};
int inputs_[fake::kPins] = {};
}  // namespace

fake::SerialPort Serial;

void pinMode(uint8_t pin, uint8_t mode) {
  if (pin < fake::kPins) modes_[pin] = mode;
}

void digitalWrite(uint8_t pin, uint8_t value) {
  if (pin < fake::kPins) outputs_[pin] = value;
}

int digitalRead(uint8_t pin) {
  return pin < fake::kPins ? inputs_[pin] : LOW;
}

int analogRead(uint8_t pin) {
  return pin < fake::kPins ? inputs_[pin] : 0;
}

unsigned long millis() {
  return now_;
}

namespace fake {
void setMillis(unsigned long now) {
  now_ = now;
}
void advanceMillis(unsigned long delta) {
  now_ += delta;
}
uint8_t pinModeOf(uint8_t pin) {
  return pin < kPins ? modes_[pin] : 0;
}
uint8_t outputOf(uint8_t pin) {
  return pin < kPins ? outputs_[pin] : 0;
}
void setInput(uint8_t pin, int value) {
  if (pin < kPins) inputs_[pin] = value;
}
}  // namespace fake
