/* Join-storm load generator in C: the same clients and the same stdin/stdout protocol as
 * bench/node/storm.mjs, for a fraction of the CPU per client.
 *
 * Why C: the Node clients cost about as much CPU per connection as the servers under test spend
 * per join, so with 500 clients sharing one token both servers wait on the generator and their
 * ratio tends to 1. One thread, one epoll set, non-blocking sockets: per client one socket, one
 * upgrade request, a few reads and writes, nothing else.
 *
 * Each client: TCP connect, RFC 6455 upgrade (Sec-WebSocket-Accept checked), y-websocket sync
 * step 1 of an empty document on open, the server's step 1 answered with an empty step 2,
 * synced on the first step 2 from the server. Frames it sends are masked, as a client's must be.
 *
 *   cc -O2 -o storm bench/native/storm.c -lcrypto     (bench/native_gen.py does this)
 *   ./storm -
 *
 * stdin, one line each: the input {"urls": ["ws://host:port/path?query", ...],
 * "timeout_ms": 60000} (other keys are ignored), then "go", then "close". stdout, one JSON
 * object per line: {"ready": n}; the result {clients, synced, all_synced_ms, elapsed_ms,
 * open_loop_ms, synced_ms, cpu_ms, system_cpu_ms, errors, error_count}; {"closed": n,
 * "cpu_ms": ...}. Then the next input, until stdin ends.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define READ_BYTES 65536
#define HEAD_BYTES_MAX 16384
#define ERRORS_KEPT 20
#define CLOSE_TIMEOUT_MS 10000

/* y-websocket frames of an empty document: messageSync, step 1 with an empty state vector;
 * messageSync, step 2 with an empty update. */
static const unsigned char EMPTY_STEP1[] = {0, 0, 1, 0};
static const unsigned char EMPTY_STEP2[] = {0, 1, 2, 0, 0};

enum state { CONNECTING, UPGRADING, OPEN, CLOSING, DONE };

struct client {
    int fd;
    enum state state;
    int settled; /* synced or failed: counted once */
    double synced_ms;
    char key[25];
    unsigned char mask[4];
    unsigned char *in; /* bytes not yet parsed: the response head, then frames */
    size_t in_len, in_cap;
    unsigned char *out; /* bytes the socket did not take yet */
    size_t out_len, out_cap;
};

struct target {
    char host[256];
    char port[8];
    const char *path; /* path and query, into the url */
};

static struct client *clients;
static struct target *targets;
static char **urls;
static size_t n_clients;
static int epfd;
static size_t synced, failed;
static char *errors[ERRORS_KEPT];
static size_t error_count;
static double start_ms;
static unsigned char read_buffer[READ_BYTES];

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double cpu_ms(int system_only) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    double sys = r.ru_stime.tv_sec * 1e3 + r.ru_stime.tv_usec / 1e3;
    double user = r.ru_utime.tv_sec * 1e3 + r.ru_utime.tv_usec / 1e3;
    return system_only ? sys : sys + user;
}

static void die(const char *why) {
    fprintf(stderr, "storm: %s: %s\n", why, strerror(errno));
    exit(2);
}

static void *grow(void *p, size_t *cap, size_t need) {
    if (need <= *cap) return p;
    size_t cap2 = *cap ? *cap : 256;
    while (cap2 < need) cap2 *= 2;
    p = realloc(p, cap2);
    if (!p) die("out of memory");
    *cap = cap2;
    return p;
}

static void random_bytes(unsigned char *to, size_t n) {
    /* One pool of random bytes for every key and mask, refilled when used up. */
    static unsigned char pool[65536];
    static size_t at = sizeof pool;
    if (at + n > sizeof pool) {
        for (size_t got = 0; got < sizeof pool;) {
            ssize_t k = getrandom(pool + got, sizeof pool - got, 0);
            if (k < 0) die("getrandom");
            got += (size_t)k;
        }
        at = 0;
    }
    memcpy(to, pool + at, n);
    at += n;
}

static void base64(const unsigned char *in, size_t n, char *out) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? abc[v & 63] : '=';
    }
    out[o] = 0;
}

static void add_error(size_t i, const char *fmt, ...) {
    error_count++;
    if (error_count > ERRORS_KEPT) return;
    char text[300];
    int k = snprintf(text, sizeof text, "client %zu: ", i);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + k, sizeof text - (size_t)k, fmt, ap);
    va_end(ap);
    errors[error_count - 1] = strdup(text);
}

static void finish(struct client *c) {
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
    }
    c->state = DONE;
}

static void fail(size_t i, const char *fmt, const char *detail) {
    struct client *c = &clients[i];
    if (!c->settled) {
        c->settled = 1;
        failed++;
        add_error(i, fmt, detail);
    }
    finish(c);
}

/* Sends bytes, keeping what the socket does not take for the next EPOLLOUT. */
static int send_bytes(size_t i, const unsigned char *bytes, size_t n) {
    struct client *c = &clients[i];
    if (c->out_len == 0) {
        ssize_t k = send(c->fd, bytes, n, MSG_NOSIGNAL);
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            fail(i, "send: %s", strerror(errno));
            return -1;
        }
        if (k > 0) {
            bytes += k;
            n -= (size_t)k;
        }
    }
    if (n) {
        c->out = grow(c->out, &c->out_cap, c->out_len + n);
        memcpy(c->out + c->out_len, bytes, n);
        c->out_len += n;
    }
    return 0;
}

static int send_frame(size_t i, int opcode, const unsigned char *payload, size_t n) {
    unsigned char frame[6 + 125];
    if (n > 125) return -1; /* every frame this client sends is a few bytes */
    const unsigned char *mask = clients[i].mask;
    frame[0] = (unsigned char)(0x80 | opcode);
    frame[1] = (unsigned char)(0x80 | n);
    memcpy(frame + 2, mask, 4);
    for (size_t k = 0; k < n; k++) frame[6 + k] = payload[k] ^ mask[k & 3];
    return send_bytes(i, frame, 6 + n);
}

static void send_upgrade(size_t i) {
    struct client *c = &clients[i];
    struct target *t = &targets[i];
    char request[8192];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     t->path, t->host, t->port, c->key);
    if (n <= 0 || (size_t)n >= sizeof request) {
        fail(i, "%s", "url too long");
        return;
    }
    c->state = UPGRADING;
    send_bytes(i, (const unsigned char *)request, (size_t)n);
}

static int accept_matches(const struct client *c, const char *head) {
    char source[64];
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    char expected[32];
    snprintf(source, sizeof source, "%s%s", c->key, GUID);
    if (!EVP_Digest(source, strlen(source), digest, &digest_len, EVP_sha1(), NULL)) return 0;
    base64(digest, digest_len, expected);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *name = line + 2;
        if (strncasecmp(name, "sec-websocket-accept:", 21) == 0) {
            const char *value = name + 21;
            while (*value == ' ') value++;
            return strncmp(value, expected, strlen(expected)) == 0;
        }
    }
    return 0;
}

static void on_message(size_t i, const unsigned char *p, size_t n) {
    struct client *c = &clients[i];
    if (n < 2 || p[0] != 0) return; /* not a sync message: awareness, auth, ... */
    if (p[1] == 0) {
        send_frame(i, 0x2, EMPTY_STEP2, sizeof EMPTY_STEP2);
    } else if (p[1] == 1 && !c->settled) {
        c->settled = 1;
        c->synced_ms = now_ms() - start_ms;
        synced++;
    }
}

/* Parses whole frames out of c->in; returns how many bytes were used. */
static size_t on_frames(size_t i, unsigned char *buf, size_t len) {
    struct client *c = &clients[i];
    size_t at = 0;
    while (c->state == OPEN || c->state == CLOSING) {
        if (len - at < 2) break;
        unsigned char *f = buf + at;
        int opcode = f[0] & 0x0f;
        uint64_t n = f[1] & 0x7f;
        size_t head = 2;
        if (f[1] & 0x80) {
            fail(i, "%s", "masked frame from the server");
            return len;
        }
        if (n == 126) {
            if (len - at < 4) break;
            n = (uint64_t)f[2] << 8 | f[3];
            head = 4;
        } else if (n == 127) {
            if (len - at < 10) break;
            n = 0;
            for (int k = 0; k < 8; k++) n = n << 8 | f[2 + k];
            head = 10;
        }
        if (len - at - head < n) break;
        unsigned char *payload = f + head;
        at += head + (size_t)n;
        /* Fragmented messages: the servers measured send none; the first fragment's bytes
         * still carry the sync message type, which is all this client reads. */
        if (opcode == 0x2 || opcode == 0x0 || opcode == 0x1) {
            on_message(i, payload, (size_t)n);
        } else if (opcode == 0x8) {
            int code = n >= 2 ? payload[0] << 8 | payload[1] : 1005;
            if (c->state == OPEN) {
                send_frame(i, 0x8, payload, n >= 2 ? 2 : 0);
                if (!c->settled) {
                    char detail[32];
                    snprintf(detail, sizeof detail, "%d", code);
                    fail(i, "closed %s", detail);
                    return len;
                }
            }
            c->state = CLOSING;
            shutdown(c->fd, SHUT_WR);
        } else if (opcode == 0x9) {
            send_frame(i, 0xa, payload, n > 125 ? 125 : (size_t)n);
        }
    }
    return at;
}

static void on_head(size_t i) {
    struct client *c = &clients[i];
    unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end) {
        if (c->in_len > HEAD_BYTES_MAX) fail(i, "%s", "response head too long");
        return;
    }
    size_t head_len = (size_t)(end - c->in) + 4;
    char head[HEAD_BYTES_MAX + 8];
    if (head_len > HEAD_BYTES_MAX) {
        fail(i, "%s", "response head too long");
        return;
    }
    memcpy(head, c->in, head_len);
    head[head_len] = 0;
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        char status[4] = {0};
        memcpy(status, head + 9, head_len > 12 ? 3 : 0);
        fail(i, "HTTP %s", status);
        return;
    }
    if (!accept_matches(c, head)) {
        fail(i, "%s", "bad Sec-WebSocket-Accept");
        return;
    }
    c->state = OPEN;
    memmove(c->in, c->in + head_len, c->in_len - head_len);
    c->in_len -= head_len;
    send_frame(i, 0x2, EMPTY_STEP1, sizeof EMPTY_STEP1);
}

static void on_readable(size_t i) {
    struct client *c = &clients[i];
    for (;;) {
        ssize_t k = recv(c->fd, read_buffer, sizeof read_buffer, 0);
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            fail(i, "recv: %s", strerror(errno));
            return;
        }
        if (k == 0) {
            if (c->state == CLOSING) finish(c);
            else fail(i, "closed %s", "1006");
            return;
        }
        unsigned char *data = read_buffer;
        size_t len = (size_t)k;
        if (c->in_len || c->state == UPGRADING) {
            /* A partial head or frame is waiting: join the bytes to it. */
            c->in = grow(c->in, &c->in_cap, c->in_len + len);
            memcpy(c->in + c->in_len, data, len);
            c->in_len += len;
            if (c->state == UPGRADING) on_head(i);
            if (c->state == DONE) return;
            if (c->state != UPGRADING) {
                size_t used = on_frames(i, c->in, c->in_len);
                if (c->state == DONE) return;
                memmove(c->in, c->in + used, c->in_len - used);
                c->in_len -= used;
            }
        } else {
            size_t used = on_frames(i, data, len);
            if (c->state == DONE) return;
            if (used < len) {
                c->in = grow(c->in, &c->in_cap, len - used);
                memcpy(c->in, data + used, len - used);
                c->in_len = len - used;
            }
        }
        /* Edge-triggered: a short read means the socket is drained for now. */
        if ((size_t)k < sizeof read_buffer) return;
    }
}

static void on_writable(size_t i) {
    struct client *c = &clients[i];
    if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            fail(i, "connect: %s", strerror(err));
            return;
        }
        send_upgrade(i);
        return;
    }
    if (c->out_len) {
        ssize_t k = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            fail(i, "send: %s", strerror(errno));
            return;
        }
        if (k > 0) {
            memmove(c->out, c->out + k, c->out_len - (size_t)k);
            c->out_len -= (size_t)k;
        }
    }
}

static int parse_target(const char *url, struct target *t) {
    if (strncmp(url, "ws://", 5) != 0) return -1;
    const char *host = url + 5;
    const char *slash = strchr(host, '/');
    if (!slash) slash = host + strlen(host);
    const char *colon = memchr(host, ':', (size_t)(slash - host));
    const char *host_end = colon ? colon : slash;
    if ((size_t)(host_end - host) >= sizeof t->host) return -1;
    memcpy(t->host, host, (size_t)(host_end - host));
    t->host[host_end - host] = 0;
    if (colon) {
        size_t n = (size_t)(slash - colon - 1);
        if (n == 0 || n >= sizeof t->port) return -1;
        memcpy(t->port, colon + 1, n);
        t->port[n] = 0;
    } else {
        strcpy(t->port, "80");
    }
    t->path = *slash ? slash : "/";
    return 0;
}

static int resolve(const struct target *t, struct sockaddr_storage *addr, socklen_t *len) {
    struct addrinfo hints = {0}, *found;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(t->host, t->port, &hints, &found) != 0) return -1;
    memcpy(addr, found->ai_addr, found->ai_addrlen);
    *len = found->ai_addrlen;
    freeaddrinfo(found);
    return 0;
}

static void open_client(size_t i, const struct sockaddr_storage *addr, socklen_t addr_len) {
    struct client *c = &clients[i];
    c->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fail(i, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned char key[16];
    random_bytes(key, sizeof key);
    base64(key, sizeof key, c->key);
    random_bytes(c->mask, sizeof c->mask);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u64 = i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        fail(i, "epoll_ctl: %s", strerror(errno));
        return;
    }
    if (connect(c->fd, (const struct sockaddr *)addr, addr_len) < 0 && errno != EINPROGRESS) {
        fail(i, "connect: %s", strerror(errno));
    }
}

/* Runs the epoll loop until done() or the deadline. */
static void loop(int (*done)(void), double deadline_ms) {
    struct epoll_event events[512];
    while (!done()) {
        double left = deadline_ms - now_ms();
        if (left <= 0) return;
        int n = epoll_wait(epfd, events, 512, (int)left + 1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            size_t i = (size_t)events[k].data.u64;
            uint32_t e = events[k].events;
            if (clients[i].state == DONE) continue;
            if (e & EPOLLOUT) on_writable(i);
            if (clients[i].state != DONE && (e & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(i);
        }
    }
}

static int all_settled(void) { return synced + failed >= n_clients; }

static int all_closed(void) {
    for (size_t i = 0; i < n_clients; i++)
        if (clients[i].state != DONE) return 0;
    return 1;
}

static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

static void storm(double timeout_ms) {
    synced = failed = 0;
    error_count = 0;
    clients = calloc(n_clients, sizeof *clients);
    targets = calloc(n_clients, sizeof *targets);
    if (!clients || !targets) die("out of memory");
    struct sockaddr_storage addr;
    socklen_t addr_len = 0;
    char last_host[256 + 8] = "";
    for (size_t i = 0; i < n_clients; i++) {
        clients[i].fd = -1;
        if (parse_target(urls[i], &targets[i]) < 0) {
            fail(i, "bad url %s", urls[i]);
        }
    }
    double cpu_start = cpu_ms(0), system_start = cpu_ms(1);
    start_ms = now_ms();
    for (size_t i = 0; i < n_clients; i++) {
        if (clients[i].state == DONE) continue;
        char host_port[256 + 8];
        snprintf(host_port, sizeof host_port, "%s:%s", targets[i].host, targets[i].port);
        if (strcmp(host_port, last_host) != 0) { /* every url of a storm names one server */
            if (resolve(&targets[i], &addr, &addr_len) < 0) {
                fail(i, "cannot resolve %s", host_port);
                continue;
            }
            strcpy(last_host, host_port);
        }
        open_client(i, &addr, addr_len);
    }
    double open_loop_ms = now_ms() - start_ms;
    loop(all_settled, start_ms + timeout_ms);
    double elapsed_ms = now_ms() - start_ms;
    if (!all_settled()) {
        error_count++;
        if (error_count <= ERRORS_KEPT) {
            char text[120];
            snprintf(text, sizeof text, "%zu clients neither synced nor failed in %.0f ms",
                     n_clients - synced - failed, timeout_ms);
            errors[error_count - 1] = strdup(text);
        }
    }
    double last = 0;
    for (size_t i = 0; i < n_clients; i++)
        if (clients[i].settled && clients[i].synced_ms > last) last = clients[i].synced_ms;
    printf("{\"clients\":%zu,\"synced\":%zu,\"all_synced_ms\":", n_clients, synced);
    if (synced == n_clients) printf("%.3f", last);
    else printf("null");
    printf(",\"elapsed_ms\":%.3f,\"open_loop_ms\":%.3f,\"synced_ms\":[", elapsed_ms, open_loop_ms);
    for (size_t i = 0; i < n_clients; i++) {
        if (i) putchar(',');
        if (clients[i].settled && clients[i].synced_ms > 0) printf("%.3f", clients[i].synced_ms);
        else printf("null");
    }
    printf("],\"cpu_ms\":%.3f,\"system_cpu_ms\":%.3f,\"errors\":[", cpu_ms(0) - cpu_start,
           cpu_ms(1) - system_start);
    size_t kept = error_count < ERRORS_KEPT ? error_count : ERRORS_KEPT;
    for (size_t k = 0; k < kept; k++) {
        if (k) putchar(',');
        print_json_string(errors[k]);
        free(errors[k]);
    }
    printf("],\"error_count\":%zu}\n", error_count);
    fflush(stdout);
}

static void close_all(void) {
    size_t closing = 0;
    static const unsigned char normal[] = {0x03, 0xe8}; /* 1000 */
    double cpu_start = cpu_ms(0);
    for (size_t i = 0; i < n_clients; i++) {
        struct client *c = &clients[i];
        if (c->state == OPEN) {
            closing++;
            send_frame(i, 0x8, normal, sizeof normal);
            if (c->state == OPEN) c->state = CLOSING;
        } else if (c->state != DONE) {
            closing++;
            finish(c);
        }
    }
    loop(all_closed, now_ms() + CLOSE_TIMEOUT_MS);
    for (size_t i = 0; i < n_clients; i++) {
        finish(&clients[i]);
        free(clients[i].in);
        free(clients[i].out);
    }
    printf("{\"closed\":%zu,\"cpu_ms\":%.3f}\n", closing, cpu_ms(0) - cpu_start);
    fflush(stdout);
    free(clients);
    free(targets);
    clients = NULL;
    targets = NULL;
}

/* The input's "urls" (strings with at most \" \\ \/ escapes, as JSON encoders write urls) and
 * "timeout_ms". A hand-written reader: the input is one known shape, and a JSON library would be
 * this program's only dependency besides libcrypto. */
static int parse_input(char *line, double *timeout_ms) {
    char *t = strstr(line, "\"timeout_ms\"");
    *timeout_ms = 60000;
    if (t && (t = strchr(t, ':'))) *timeout_ms = strtod(t + 1, NULL);
    char *p = strstr(line, "\"urls\"");
    if (!p || !(p = strchr(p, '['))) return -1;
    p++;
    size_t cap = 0;
    n_clients = 0;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ']') break;
        if (*p != '"') return -1;
        char *out = ++p, *begin = p;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1]) p++;
            *out++ = *p++;
        }
        if (*p != '"') return -1;
        *out = 0;
        p++;
        urls = grow(urls, &cap, (n_clients + 1) * sizeof *urls);
        urls[n_clients++] = begin;
    }
    return n_clients ? 0 : -1;
}

static int wait_for(const char *word, char **line, size_t *cap) {
    while (getline(line, cap, stdin) >= 0) {
        (*line)[strcspn(*line, "\r\n")] = 0;
        if (strcmp(*line, word) == 0) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    char *input = NULL, *line = NULL;
    size_t input_cap = 0, line_cap = 0;
    while (getline(&input, &input_cap, stdin) >= 0) {
        if (input[0] != '{') continue;
        double timeout_ms;
        if (parse_input(input, &timeout_ms) < 0) {
            fprintf(stderr, "storm: input without a list of urls\n");
            return 2;
        }
        printf("{\"ready\":%zu}\n", n_clients);
        fflush(stdout);
        if (!wait_for("go", &line, &line_cap)) break;
        storm(timeout_ms);
        if (!wait_for("close", &line, &line_cap)) break;
        close_all();
    }
    return 0;
}
