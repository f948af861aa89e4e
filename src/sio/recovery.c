/*
 * Connection state recovery (socket.io 4.6+ wire behaviour): a client that loses its connection and comes
 * back within the window gets its socket id, its rooms and the broadcasts it missed, and `recovered` is set.
 *
 * How it holds up where recovery is known to break:
 *   - offsets are sequence numbers ("<boot>-<seq>"), so an offset older than every retained packet still
 *     orders against them: a client idle for hours recovers with nothing to replay instead of failing;
 *   - a client that never received a broadcast sends no offset: the session remembers the sequence number at
 *     which it connected, and that stands in for the offset;
 *   - the private id (pid) stays the same across recoveries, and the session is stored again at every
 *     disconnect, so the second and later reconnects recover like the first.
 * Only broadcasts are retained, as in socket.io; they carry their offset as a last string argument.
 *
 * Workers: every broadcast reaches every worker, each retaining it under its own offsets. A CONNECT whose
 * pid is not saved here is held while the adapter asks the other workers (sio_cluster_request_restore);
 * the one that holds the session packs it with the broadcasts it missed and lets it go
 * (sio_cluster_restore_take), and the CONNECT goes on recovered (sio_recovery_resume), or fresh.
 *
 * Kept by the adapter: an adapter with broadcast_offset and persist (the Redis streams mode) keeps
 * recovery for the whole cluster, and this server retains nothing: a broadcast carries the offset the
 * adapter names for it (sio_sel.offset, every server's clients get the same), a leaving socket's state
 * goes to persist, and every returning pid is asked of the adapter, which answers with a packed session
 * (sio_restore_pack_*) as a worker does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sio/internal.h"
#include "util/log.h"

typedef struct sio_stored {
  struct sio_stored *next;
  uint64_t seq;
  uint64_t created;
  wsio_nsp *nsp;
  eio_msg *msg;
  char except_sid[EIO_SID_LEN + 1];
  unsigned nrooms, nexcept;
  char **rooms;              /* nrooms names, then nexcept names, in one block with the strings */
} sio_stored;

typedef struct sio_session {
  char pid[EIO_SID_LEN + 1];
  char sid[EIO_SID_LEN + 1];
  wsio_nsp *nsp;
  uint64_t seq;              /* the last broadcast sequence number the socket had been sent, or its start */
  uint64_t until;            /* expiry, loop time */
  size_t nrooms;
  char **rooms;              /* one block with the strings */
  char *data_json;           /* socket.data as JSON, NULL when unset */
  int migrated;              /* restored from another worker: the client's offsets may be that worker's */
  eio_msg **replay;          /* from another worker: the missed broadcasts, in order */
  size_t nreplay;
} sio_session;

struct sio_recovery {
  char boot[9];              /* offsets from another process never match */
  uint64_t seq;
  sio_stored *head, *tail;
  size_t count;
  map sessions;              /* pid -> sio_session */
};

/* Retained broadcasts at most; older ones go first even inside the window. */
#define SIO_RECOVERY_MAX_PACKETS 100000

static char **strings_block(const char *const *names, size_t n, size_t extra) {
  size_t need = n * sizeof(char *) + extra;
  for (size_t i = 0; i < n; i++) need += strlen(names[i]) + 1;
  char **v = malloc(need ? need : 1);
  if (!v) return NULL;
  char *p = (char *)(v + n) + extra;
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(names[i]) + 1;
    memcpy(p, names[i], len);
    v[i] = p;
    p += len;
  }
  return v;
}

int sio_recovery_init(wsio_io *io) {
  sio_recovery *r = calloc(1, sizeof *r);
  if (!r) return WSIO_ENOMEM;
  char sid[EIO_SID_LEN + 1];
  if (eio_sid_generate(sid) != 0) {
    free(r);
    return WSIO_EIO;
  }
  memcpy(r->boot, sid, 8);
  io->rec = r;
  return 0;
}

static void stored_free(sio_stored *p) {
  eio_msg_unref(p->msg);
  free(p->rooms);
  free(p);
}

static void session_free(sio_session *s) {
  for (size_t i = 0; i < s->nreplay; i++) eio_msg_unref(s->replay[i]);
  free(s->replay);
  free(s->data_json);
  free(s->rooms);
  free(s);
}

void sio_recovery_free(wsio_io *io) {
  sio_recovery *r = io->rec;
  if (!r) return;
  while (r->head) {
    sio_stored *p = r->head;
    r->head = p->next;
    stored_free(p);
  }
  size_t i = 0;
  map_entry *e;
  while (map_next(&r->sessions, &i, &e)) session_free(e->value);
  map_free(&r->sessions);
  free(r);
  io->rec = NULL;
}

/* Drops what the window no longer covers. Called from the io's tick. */
void sio_recovery_purge(wsio_io *io) {
  sio_recovery *r = io->rec;
  if (!r) return;
  uint64_t now = sio_now(io);
  while (r->head && (r->head->created + io->cfg.recovery_ms <= now || r->count > SIO_RECOVERY_MAX_PACKETS)) {
    sio_stored *p = r->head;
    r->head = p->next;
    if (!r->head) r->tail = NULL;
    r->count--;
    stored_free(p);
  }
  size_t i = 0;
  map_entry *e;
  sio_session *expired = NULL;
  while (map_next(&r->sessions, &i, &e)) {
    sio_session *s = e->value;
    if (s->until <= now && !expired) expired = s; /* one per tick: deleting invalidates the walk */
  }
  if (expired) {
    map_del(&r->sessions, expired->pid, EIO_SID_LEN);
    session_free(expired);
  }
}

int sio_recovery_pending(const wsio_io *io) { return io->rec && (io->rec->head || io->rec->sessions.count); }

uint64_t sio_recovery_current(const wsio_io *io) { return io->rec ? io->rec->seq : 0; }

int sio_recovery_stamp_text(buf *b, const char *offset) {
  /* An EVENT's text ends with its data array: the offset goes before the closing bracket. */
  if (!b->len || b->data[b->len - 1] != ']') return WSIO_EPROTO;
  size_t at = b->len - 1;
  b->data[at] = ',';
  if (sio_json_write_string(b, offset, strlen(offset)) != 0 || buf_append(b, "]", 1) != 0) {
    b->len = at + 1;
    b->data[at] = ']';
    return WSIO_ENOMEM;
  }
  return 0;
}

/* The broadcast in io->scratch gets its offset as a last string argument; returns the sequence number. */
uint64_t sio_recovery_stamp(wsio_io *io) {
  sio_recovery *r = io->rec;
  uint64_t seq = ++r->seq;
  char off[48];
  snprintf(off, sizeof off, "%s-%llu", r->boot, (unsigned long long)seq);
  sio_recovery_stamp_text(&io->scratch, off);
  return seq;
}

void sio_recovery_store(wsio_io *io, const wsio_op *op, uint64_t seq, eio_msg *msg) {
  sio_recovery *r = io->rec;
  const char *names[2 * WSIO_OP_MAX_ROOMS];
  for (unsigned i = 0; i < op->nrooms; i++) names[i] = op->rooms[i];
  for (unsigned i = 0; i < op->nexcept; i++) names[op->nrooms + i] = op->except[i];
  sio_stored *p = calloc(1, sizeof *p);
  if (!p || !(p->rooms = strings_block(names, op->nrooms + op->nexcept, 0))) {
    free(p);
    return;
  }
  p->seq = seq;
  p->created = sio_now(io);
  p->nsp = op->nsp;
  p->nrooms = op->nrooms;
  p->nexcept = op->nexcept;
  /* Only a recoverable (v4) socket's id can match a session replayed later: a longer (v3) one is left out. */
  if (op->except_socket && op->except_socket->id_len == EIO_SID_LEN)
    memcpy(p->except_sid, op->except_socket->id, EIO_SID_LEN + 1);
  msg->refs++;
  p->msg = msg;
  if (r->tail) r->tail->next = p;
  else r->head = p;
  r->tail = p;
  r->count++;
  sio_tick_arm(io);
}

/* Stores the state of a socket that left for a reason a reconnect can recover from. */
void sio_recovery_save(wsio_socket *s, const char *reason) {
  wsio_io *io = s->nsp->io;
  sio_recovery *r = io->rec;
  static const char *const recoverable[] = {"transport error", "transport close", "forced close", "ping timeout",
                                            "server shutting down", "forced server close"};
  int ok = 0;
  for (size_t i = 0; i < sizeof recoverable / sizeof recoverable[0]; i++) ok |= strcmp(reason, recoverable[i]) == 0;
  if (!r || !ok || !s->pid[0]) return;
  sio_adapter *a = io->adapter;
  if (a && a->vt->persist) {
    const char *stack[64], **names = s->nrooms <= 64 ? stack : malloc(s->nrooms * sizeof *names);
    if (!names) return;
    for (size_t i = 0; i < s->nrooms; i++) names[i] = s->rooms[i].room->name;
    sio_session_info info = {.sid = s->id, .pid = s->pid, .nsp = s->nsp->name, .rooms = names,
                             .nrooms = s->nrooms, .data_json = s->data_json};
    a->vt->persist(a, &info);
    if (names != stack) free(names);
    return;
  }
  const char *names[SIO_RESTORE_MAX_ROOMS];
  size_t n = s->nrooms < SIO_RESTORE_MAX_ROOMS ? s->nrooms : SIO_RESTORE_MAX_ROOMS;
  for (size_t i = 0; i < n; i++) names[i] = s->rooms[i].room->name;
  sio_session *ss = calloc(1, sizeof *ss);
  if (!ss || !(ss->rooms = strings_block(names, n, 0))) {
    free(ss);
    return;
  }
  if (s->data_json && !(ss->data_json = strdup(s->data_json))) {
    session_free(ss);
    return;
  }
  ss->migrated = s->migrated;
  memcpy(ss->pid, s->pid, sizeof ss->pid);
  memcpy(ss->sid, s->id, sizeof ss->sid);
  ss->nsp = s->nsp;
  ss->nrooms = n;
  ss->seq = s->seq;
  ss->until = sio_now(io) + io->cfg.recovery_ms;
  sio_session *old = map_get(&r->sessions, ss->pid, EIO_SID_LEN);
  if (old) {
    map_del(&r->sessions, old->pid, EIO_SID_LEN);
    session_free(old);
  }
  if (map_put(&r->sessions, ss->pid, EIO_SID_LEN, ss) != 0) session_free(ss);
  sio_tick_arm(io);
}

static int has(char *const *names, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0) return 1;
  return 0;
}

/* Whether a stored broadcast targeted the session. */
static int matches(const sio_stored *p, const sio_session *ss) {
  if (p->nsp != ss->nsp) return 0;
  if (p->except_sid[0] && strcmp(p->except_sid, ss->sid) == 0) return 0;
  for (unsigned i = 0; i < p->nexcept; i++)
    if (strcmp(p->rooms[p->nrooms + i], ss->sid) == 0 || has(ss->rooms, ss->nrooms, p->rooms[p->nrooms + i]))
      return 0;
  if (p->nrooms == 0) return 1;
  for (unsigned i = 0; i < p->nrooms; i++)
    if (strcmp(p->rooms[i], ss->sid) == 0 || has(ss->rooms, ss->nrooms, p->rooms[i])) return 1;
  return 0;
}

/* Reads "<boot>-<seq>" into *seq. 0 when it is ours and well formed. */
static int parse_offset(const sio_recovery *r, const char *off, uint64_t *seq) {
  if (strncmp(off, r->boot, 8) != 0 || off[8] != '-') return -1;
  char *end;
  unsigned long long v = strtoull(off + 9, &end, 10);
  if (*end || end == off + 9) return -1;
  *seq = v;
  return 0;
}

/* The position the client's offset stands for in the session ss (ours), or -1 when a fresh session is the
 * honest answer. off is "" when the client sent none. */
static int session_from(const sio_recovery *r, const sio_session *ss, const char *off, uint64_t *from) {
  *from = ss->seq;
  if (!off[0]) return 0;
  uint64_t seq;
  if (parse_offset(r, off, &seq) == 0) *from = seq;
  else if (!ss->migrated) return -1; /* an offset from elsewhere */
  return 0;
}

/* Tries to restore the session named by auth's pid into s (created, not yet connected). Returns 1 when
 * restored: s has its old id, pid and rooms, and its missed broadcasts go out once connected. Returns
 * 2 when the session may be on another worker: the CONNECT is held until sio_recovery_resume. */
int sio_recovery_restore(wsio_socket *s, const char *auth, size_t auth_len) {
  wsio_io *io = s->nsp->io;
  sio_recovery *r = io->rec;
  if (!r || !auth) return 0;
  sio_json_span obj = {auth, auth_len, SIO_JSON_OBJECT}, v;
  char pid[EIO_SID_LEN + 2], off[64] = "";
  if (!sio_json_object_find(&obj, "pid", 3, &v) || v.kind != SIO_JSON_STRING) return 0;
  ssize_t n = sio_json_string_decode(&v, pid, sizeof pid - 1);
  if (n != EIO_SID_LEN) return 0;
  pid[n] = 0;
  if (sio_json_object_find(&obj, "offset", 6, &v) && v.kind == SIO_JSON_STRING) {
    ssize_t m = sio_json_string_decode(&v, off, sizeof off - 1);
    off[m > 0 ? m : 0] = 0;
  }
  sio_session *ss = map_get(&r->sessions, pid, EIO_SID_LEN);
  if (!ss) {
    /* Not saved here: another worker may hold it (the adapter asks them all). */
    const sio_adapter *a = io->adapter;
    if (!a || !a->vt->restore) return 0;
    wsio_next *hold = malloc(sizeof *hold);
    if (!hold) return 0;
    *hold = (wsio_next){.s = s, .index = 0};
    s->next = hold;
    memcpy(s->pid, pid, sizeof s->pid);
    if (sio_cluster_request_restore(io, hold, pid, off) != 0) {
      s->next = NULL;
      s->pid[0] = 0;
      free(hold);
      return 0;
    }
    return 2;
  }
  uint64_t from;
  if (ss->nsp != s->nsp || ss->until <= sio_now(io) || session_from(r, ss, off, &from) != 0) return 0;
  map_del(&r->sessions, pid, EIO_SID_LEN);
  memcpy(s->id_buf, ss->sid, sizeof s->id_buf);
  memcpy(s->pid, ss->pid, sizeof s->pid);
  s->recovered = 1;
  s->migrated = (uint8_t)ss->migrated;
  s->seq = from;
  s->restore = ss; /* rooms and replay are applied once connected */
  return 1;
}

/* After the CONNECT reply: rejoin rooms and send the missed broadcasts in order. */
void sio_recovery_apply(wsio_socket *s) {
  sio_session *ss = s->restore;
  if (!ss) return;
  s->restore = NULL;
  for (size_t i = 0; i < ss->nrooms; i++) sio_room_add(s, ss->rooms[i], strlen(ss->rooms[i]));
  sio_recovery *r = s->nsp->io->rec;
  size_t replayed = 0;
  if (ss->data_json && !s->data_json) {
    s->data_json = ss->data_json; /* taken */
    ss->data_json = NULL;
  }
  for (size_t i = 0; i < ss->nreplay; i++)
    if (eio_socket_send_msg(s->client->eio, ss->replay[i]) == 0) replayed++;
  for (sio_stored *p = r->head; p && !ss->nreplay; p = p->next) {
    if (p->seq <= s->seq || !matches(p, ss)) continue;
    if (eio_socket_send_msg(s->client->eio, p->msg) == 0) replayed++;
    s->seq = p->seq;
  }
  log_debug("socket.io: recovered %s with %zu missed packets", s->id, replayed);
  session_free(ss);
}

void sio_recovery_discard(wsio_socket *s) {
  if (s->restore) session_free(s->restore);
  s->restore = NULL;
}

/* ---- across the workers of a process ----
 * A packed session: id NUL, namespace NUL, data flag (1 byte) and data NUL, room count (4 bytes) and rooms
 * NUL-terminated, packet count (4 bytes), then each missed broadcast as its length (4 bytes) and its
 * Engine.IO polling payload (text packets, and 'b' + base64 attachments). The peer is a thread of this
 * process, so counts travel in native byte order. */

static int put_u32(buf *b, size_t v) {
  uint32_t x = (uint32_t)v;
  return buf_append(b, &x, sizeof x);
}

static int put_str(buf *b, const char *str) { return buf_append(b, str, strlen(str) + 1); }

int sio_restore_pack_begin(sio_restore_pack *p, const char *sid, const char *nsp, const char *data_json,
                           const char *const *rooms, size_t nrooms) {
  memset(p, 0, sizeof *p);
  if (nrooms > SIO_RESTORE_MAX_ROOMS) return WSIO_ELIMIT;
  buf *b = &p->b;
  int rc = put_str(b, sid) || put_str(b, nsp) || buf_append(b, data_json ? "\1" : "\0", 1) ||
           put_str(b, data_json ? data_json : "") || put_u32(b, nrooms);
  for (size_t i = 0; i < nrooms && !rc; i++) rc = put_str(b, rooms[i]);
  p->count_at = b->len;
  rc = rc || put_u32(b, 0);
  if (rc) {
    buf_free(b);
    return WSIO_ENOMEM;
  }
  return 0;
}

/* One missed broadcast as its Engine.IO polling payload. */
static int pack_raw(sio_restore_pack *p, const uint8_t *polling, size_t len) {
  if (p->count >= SIO_RESTORE_MAX_PACKETS) return WSIO_ELIMIT;
  if (put_u32(&p->b, len) || buf_append(&p->b, polling, len)) return WSIO_ENOMEM;
  p->count++;
  memcpy(p->b.data + p->count_at, &p->count, sizeof p->count);
  return 0;
}

int sio_restore_pack_packet(wsio_io *io, sio_restore_pack *p, const char *pkt, size_t len, const sio_bin *atts,
                            size_t natts) {
  eio_msg *m = sio_msg_new(io, pkt, len, atts, natts);
  if (!m) return WSIO_EPROTO;
  int rc = pack_raw(p, m->polling.data, m->polling.len);
  eio_msg_unref(m);
  return rc;
}

int sio_cluster_restore_take(wsio_io *io, const char *pid, const char *offset, char **out, size_t *len) {
  sio_recovery *r = io->rec;
  *out = NULL;
  *len = 0;
  if (!r || strlen(pid) != EIO_SID_LEN) return 0;
  sio_session *ss = map_get(&r->sessions, pid, EIO_SID_LEN);
  uint64_t from;
  if (!ss || ss->until <= sio_now(io) || session_from(r, ss, offset, &from) != 0) return 0;
  sio_restore_pack pk;
  int rc = sio_restore_pack_begin(&pk, ss->sid, ss->nsp->name, ss->data_json, (const char *const *)ss->rooms,
                                  ss->nrooms);
  for (sio_stored *p = r->head; p && !rc; p = p->next)
    if (p->seq > from && matches(p, ss)) rc = pack_raw(&pk, p->msg->polling.data, p->msg->polling.len);
  if (rc) {
    buf_free(&pk.b);
    return rc == WSIO_ELIMIT ? rc : WSIO_ENOMEM;
  }
  map_del(&r->sessions, pid, EIO_SID_LEN); /* used once */
  session_free(ss);
  *out = (char *)pk.b.data;
  *len = pk.b.len;
  return 1;
}

/* A reader over a packed session that fails (returns NULL / -1) past the end. */
typedef struct unpack {
  const char *p, *end;
} unpack;

static const char *get_str(unpack *u) {
  const char *s = u->p;
  const char *nul = u->p < u->end ? memchr(u->p, 0, (size_t)(u->end - u->p)) : NULL;
  if (!nul) return NULL;
  u->p = nul + 1;
  return s;
}

static int get_u32(unpack *u, uint32_t *v) {
  if (u->end - u->p < (ptrdiff_t)sizeof *v) return -1;
  memcpy(v, u->p, sizeof *v);
  u->p += sizeof *v;
  return 0;
}

/* The session a peer packed, for the socket s of namespace nsp. NULL when it does not unpack. */
static sio_session *session_unpack(const wsio_nsp *nsp, const char *data, size_t len) {
  unpack u = {data, data + len};
  const char *sid = get_str(&u), *name = get_str(&u);
  if (!sid || !name || strlen(sid) != EIO_SID_LEN || strcmp(name, nsp->name) != 0 || u.p >= u.end) return NULL;
  int has_data = *u.p++ == 1;
  const char *data_json = get_str(&u);
  uint32_t nrooms, npkts;
  if (!data_json || get_u32(&u, &nrooms) != 0 || nrooms > SIO_RESTORE_MAX_ROOMS) return NULL;
  const char *names[SIO_RESTORE_MAX_ROOMS];
  for (uint32_t i = 0; i < nrooms; i++)
    if (!(names[i] = get_str(&u))) return NULL;
  if (get_u32(&u, &npkts) != 0 || npkts > SIO_RESTORE_MAX_PACKETS) return NULL;
  sio_session *ss = calloc(1, sizeof *ss);
  if (!ss) return NULL;
  memcpy(ss->sid, sid, sizeof ss->sid);
  ss->nrooms = nrooms;
  ss->migrated = 1;
  if (!(ss->rooms = strings_block(names, nrooms, 0)) || (has_data && !(ss->data_json = strdup(data_json))) ||
      (npkts && !(ss->replay = calloc(npkts, sizeof *ss->replay)))) {
    session_free(ss);
    return NULL;
  }
  buf bin = {0};
  for (uint32_t i = 0; i < npkts; i++) {
    uint32_t n;
    eio_payload_iter it;
    eio_packet pk;
    eio_msg *m = NULL;
    int rc = get_u32(&u, &n) != 0 || u.end - u.p < (ptrdiff_t)n || !(m = eio_msg_new()) ? -1 : 0;
    if (!rc) {
      ss->replay[ss->nreplay++] = m;
      eio_payload_iter_init(&it, (const uint8_t *)u.p, n, 0, 0);
      while ((rc = eio_payload_next(&it, &bin, &pk)) == 1)
        if ((rc = eio_msg_add(m, pk.binary, pk.data, pk.len)) != 0) break;
      u.p += n;
    }
    if (rc) {
      buf_free(&bin);
      session_free(ss);
      return NULL;
    }
  }
  buf_free(&bin);
  return ss;
}

/* A held CONNECT goes on: recovered with what a peer packed (data), else (len 0) as a fresh session. err
 * WSIO_ECLOSED: the io is going, the socket only lets go of the hold. */
void sio_recovery_resume(wsio_next *hold, const char *data, size_t len, int err) {
  wsio_socket *s = hold->s;
  free(hold);
  if (!s) return; /* the client left meanwhile */
  s->next = NULL;
  if (err == WSIO_ECLOSED) return;
  wsio_io *io = s->nsp->io;
  sio_session *ss = len ? session_unpack(s->nsp, data, len) : NULL;
  if (!ss) {
    s->pid[0] = 0; /* a new private id, as for any fresh session */
    sio_socket_start(s);
    return;
  }
  memcpy(ss->pid, s->pid, sizeof ss->pid);
  ss->nsp = s->nsp;
  memcpy(s->id_buf, ss->sid, sizeof s->id_buf);
  s->recovered = 1;
  s->migrated = 1;
  s->seq = sio_recovery_current(io); /* this worker's broadcasts from now on */
  s->restore = ss;
  sio_socket_connect(s);
}
