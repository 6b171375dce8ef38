/* simavr harness: runs an ATmega328P firmware (an Arduino Uno at 16 MHz) with its UART0 on a
 * pseudo-terminal, so the serial bridge can open it as it would a USB serial board.
 *
 *     harness [--realtime] [--usb-frame-us N] FIRMWARE.elf
 *
 * Prints the pty's slave path as the first line on stdout, then runs until killed (killing it
 * is "unplugging" the board); on SIGTERM it first prints on stderr how much simulated time passed
 * in how much wall-clock time. Options:
 *
 *   --realtime   throttle so simulated time follows wall-clock time (otherwise simavr runs as
 *                fast as it can, several times faster than a real 16 MHz part)
 *   --usb-frame-us N
 *                device-to-host bytes are passed on in batches, as a USB-serial chip does: when
 *                64 are waiting or N us (simulated) after the first of a batch; default 1000
 *                (one USB full-speed frame); 0 passes on every byte at once
 *
 * Bytes from the pty reach the simulated UART at most one per byte time of the line (115200
 * baud, 8N1: 10 bits) in simulated time, and only while simavr's 64-entry input FIFO is not
 * full (its XON/XOFF signals). Baud settings on the pty are ignored.
 *
 * SIGUSR1 injects line noise: 64 random bytes (0x00 delimiters included, so both overlong and
 * short bogus frames) towards the host on the pty and 64 into the device's UART input, each
 * burst ending with a 0x00 so the next real frame starts clean.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_irq.h>

#define FREQUENCY 16000000UL
#define BAUD 115200UL
#define CYCLES_PER_BYTE (FREQUENCY * 10 / BAUD)
#define POLL_CYCLES 200 /* how often (in cycles) the host side is looked at */
#define RX_SIZE 4096
#define NOISE 64

static int master = -1;
static avr_t* avr = NULL;
static avr_cycle_count_t usb_frame_cycles = FREQUENCY / 1000;

/* device -> host bytes waiting for the end of the current USB frame */
static uint8_t tx[64];
static size_t tx_count = 0;
static avr_cycle_count_t tx_deadline = 0;
static int xon = 1;
static volatile sig_atomic_t noise_requested = 0;
static volatile sig_atomic_t stop_requested = 0;

/* host -> device bytes waiting to enter the simulated UART */
static uint8_t rx[RX_SIZE];
static size_t rx_head = 0, rx_count = 0;

static void write_all(const uint8_t* data, size_t length) {
  while (length > 0) {
    ssize_t n = write(master, data, length);
    if (n > 0) {
      data += n;
      length -= (size_t)n;
    } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
      return; /* nobody has the slave open: the byte is lost, as on a real line */
    } else if (n < 0 && errno == EAGAIN) {
      return;
    }
  }
}

static void uart_output(struct avr_irq_t* irq, uint32_t value, void* param) {
  (void)irq;
  (void)param;
  if (tx_count == 0) tx_deadline = avr->cycle + usb_frame_cycles;
  tx[tx_count++] = (uint8_t)value;
  if (tx_count == sizeof tx || usb_frame_cycles == 0) {
    write_all(tx, tx_count);
    tx_count = 0;
  }
}

static void uart_xon(struct avr_irq_t* irq, uint32_t value, void* param) {
  (void)irq;
  (void)value;
  (void)param;
  xon = 1;
}

static void uart_xoff(struct avr_irq_t* irq, uint32_t value, void* param) {
  (void)irq;
  (void)value;
  (void)param;
  xon = 0;
}

static void on_usr1(int signal_number) {
  (void)signal_number;
  noise_requested = 1;
}

static void on_term(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

static void rx_push(uint8_t byte) {
  if (rx_count < RX_SIZE) {
    rx[(rx_head + rx_count) % RX_SIZE] = byte;
    rx_count++;
  }
}

static void read_host(void) {
  uint8_t buffer[256];
  size_t room = RX_SIZE - rx_count;
  if (room == 0) return;
  ssize_t n = read(master, buffer, room < sizeof buffer ? room : sizeof buffer);
  for (ssize_t i = 0; i < n; i++) rx_push(buffer[i]);
}

/* Random bytes, one in eight a 0x00 delimiter: short bogus frames as well as overlong ones. */
static uint8_t noise_byte(void) {
  return rand() % 8 == 0 ? 0 : (uint8_t)(rand() % 256);
}

static void inject_noise(void) {
  uint8_t burst[NOISE];
  for (size_t i = 0; i < NOISE - 1; i++) burst[i] = noise_byte();
  burst[NOISE - 1] = 0;
  write_all(burst, NOISE);
  for (size_t i = 0; i < NOISE - 1; i++) rx_push(noise_byte());
  rx_push(0);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  int realtime = 0;
  const char* path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--realtime") == 0) {
      realtime = 1;
    } else if (strcmp(argv[i], "--usb-frame-us") == 0 && i + 1 < argc) {
      usb_frame_cycles = (avr_cycle_count_t)strtoul(argv[++i], NULL, 10) * (FREQUENCY / 1000000);
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "harness: unknown option %s\n", argv[i]);
      return 2;
    } else {
      path = argv[i];
    }
  }
  if (!path) {
    fprintf(stderr, "usage: harness [--realtime] [--usb-frame-us N] FIRMWARE.elf\n");
    return 2;
  }

  /* simavr logs to stdout while loading: keep stdout for the pty path alone. */
  fflush(stdout);
  int saved_stdout = dup(1);
  dup2(2, 1);

  elf_firmware_t firmware;
  memset(&firmware, 0, sizeof firmware);
  if (elf_read_firmware(path, &firmware) != 0) {
    fprintf(stderr, "harness: cannot read %s\n", path);
    return 1;
  }
  avr = avr_make_mcu_by_name("atmega328p");
  if (!avr) {
    fprintf(stderr, "harness: no atmega328p in this simavr\n");
    return 1;
  }
  avr->log = 1; /* errors only */
  avr_init(avr);
  firmware.frequency = FREQUENCY;
  avr_load_firmware(avr, &firmware);
  avr->frequency = FREQUENCY;
  fflush(stdout);
  dup2(saved_stdout, 1);
  close(saved_stdout);

  int slave = -1;
  char name[256];
  struct termios raw;
  memset(&raw, 0, sizeof raw);
  cfmakeraw(&raw);
  if (openpty(&master, &slave, name, &raw, NULL) != 0) {
    perror("harness: openpty");
    return 1;
  }
  /* Keep the slave open so that the master never sees EIO while the bridge has it closed. */
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);

  uint32_t flags = 0;
  avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
  flags &= ~(uint32_t)(AVR_UART_FLAG_POLL_SLEEP | AVR_UART_FLAG_STDIO);
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
  avr_irq_t* output = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT);
  avr_irq_t* input = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
  avr_irq_register_notify(output, uart_output, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
                          uart_xon, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
                          uart_xoff, NULL);

  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_usr1;
  sigaction(SIGUSR1, &action, NULL);
  action.sa_handler = on_term;
  sigaction(SIGTERM, &action, NULL);
  signal(SIGPIPE, SIG_IGN);
  srand((unsigned)getpid());

  printf("%s\n", name);
  fflush(stdout);

  double start = now();
  avr_cycle_count_t next_poll = 0, next_byte = 0;
  for (;;) {
    int state = avr_run(avr);
    if (state == cpu_Done || state == cpu_Crashed) {
      fprintf(stderr, "harness: the firmware stopped (state %d)\n", state);
      return 1;
    }
    if (avr->cycle < next_poll) continue;
    next_poll = avr->cycle + POLL_CYCLES;
    if (stop_requested) {
      double wall = now() - start;
      fprintf(stderr, "harness: %.3f s simulated in %.3f s of wall-clock time\n",
              (double)avr->cycle / FREQUENCY, wall);
      return 0;
    }
    if (noise_requested) {
      noise_requested = 0;
      inject_noise();
    }
    if (tx_count > 0 && avr->cycle >= tx_deadline) {
      write_all(tx, tx_count);
      tx_count = 0;
    }
    read_host();
    if (rx_count > 0 && xon && avr->cycle >= next_byte) {
      uint8_t byte = rx[rx_head];
      rx_head = (rx_head + 1) % RX_SIZE;
      rx_count--;
      avr_raise_irq(input, byte);
      /* back to back at exactly the line rate, whatever the polling granularity */
      avr_cycle_count_t from = avr->cycle - next_byte < CYCLES_PER_BYTE ? next_byte : avr->cycle;
      next_byte = from + CYCLES_PER_BYTE;
    }
    if (realtime) {
      double ahead = (double)avr->cycle / FREQUENCY - (now() - start);
      if (ahead > 0.0005) {
        struct timespec pause = {0, (long)(ahead * 1e9)};
        nanosleep(&pause, NULL);
      }
    }
  }
}
