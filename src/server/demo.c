#include "server/demo.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth.h"

/* Names listed in "online" at most; the count is always exact. */
#define DEMO_MAX_NAMES 200

/* Past this many sockets the demo stops announcing presence: each announcement goes to everyone, so a crowd
 * would make connecting quadratic. */
#define DEMO_MAX_PRESENCE 1000

static void emit_online(wsio_nsp *nsp, json_t *names, size_t count) {
  json_t *args = json_pack("[{s:o,s:I}]", "names", names, "count", (json_int_t)count);
  char *text = json_dumps(args, JSON_COMPACT);
  json_decref(args);
  /* Volatile: presence is superseded by the next list, so a congested client may miss one, and it is not
   * retained for connection state recovery (a reconnect storm would otherwise replay every list to everyone). */
  wsio_op all = wsio_nsp_op(nsp);
  if (text) wsio_op_emit(wsio_op_volatile(&all), "online", text);
  free(text);
}

/* Presence is the whole process's, gathered with fetchSockets across workers (nicknames travel in
 * socket.data as {"nick":"..."}; with one worker the answer comes before the call returns); the one
 * leaving may still be listed. */
typedef struct online_req {
  wsio_nsp *nsp;
  char leaving[64];
} online_req;

static void on_online_fetched(int err, const wsio_remote_socket *v, size_t n, void *ud) {
  (void)err;
  online_req *r = ud;
  json_t *names = json_array();
  size_t count = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(v[i].id, r->leaving) == 0) continue;
    count++;
    json_t *data = json_loads(v[i].data_json, JSON_DECODE_ANY, NULL);
    const char *nick = json_string_value(json_object_get(data, "nick"));
    if (json_array_size(names) < DEMO_MAX_NAMES && nick && *nick) json_array_append_new(names, json_string(nick));
    json_decref(data);
  }
  emit_online(r->nsp, names, count);
  free(r);
}

static void broadcast_online(srv_app *app, wsio_nsp *nsp, const wsio_socket *leaving) {
  (void)app;
  if (wsio_nsp_count(nsp) > DEMO_MAX_PRESENCE) return;
  online_req *r = calloc(1, sizeof *r);
  if (!r) return;
  r->nsp = nsp;
  if (leaving) snprintf(r->leaving, sizeof r->leaving, "%s", wsio_socket_id(leaving));
  wsio_op all = wsio_nsp_op(nsp);
  if (wsio_op_fetch_sockets_all(&all, on_online_fetched, r) != 0) free(r);
}

static void on_nick(wsio_socket *s, const wsio_args *args, wsio_ack *ack, void *ud) {
  char nick[33];
  long n = wsio_args_string(args, 0, nick, sizeof nick);
  srv_socket *st = n > 0 ? srv_socket_get(s) : NULL;
  if (!st) {
    if (ack) wsio_ack_send(ack, "[{\"error\":\"a nickname is 1 to 32 bytes\"}]");
    return;
  }
  memcpy(st->nick, nick, (size_t)n + 1);
  json_t *data = json_pack("{s:s}", "nick", st->nick);
  char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
  if (text) wsio_socket_set_data_json(s, text);
  free(text);
  json_decref(data);
  if (ack) wsio_ack_send(ack, "[\"ok\"]");
  broadcast_online(ud, wsio_socket_nsp(s), NULL);
}

void srv_demo_connection(srv_app *app, wsio_socket *s) {
  wsio_socket_on(s, "nick", on_nick, app);
  broadcast_online(app, wsio_socket_nsp(s), NULL);
}

void srv_demo_disconnect(srv_app *app, wsio_socket *s) { broadcast_online(app, wsio_socket_nsp(s), s); }

const char srv_demo_html[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>wsio chat</title>\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<link rel=\"icon\" href=\"data:,\">\n" /* no favicon.ico request (a 404) */
    "<style>\n"
    "body{font:15px system-ui,sans-serif;margin:0;color:#1d2330;background:#f4f6f9}\n"
    "header{background:#1d2330;color:#fff;padding:.8rem 1.2rem;display:flex;gap:1rem;align-items:center}\n"
    "header h1{font-size:1.1rem;margin:0}#status{font-size:.85rem;opacity:.8}\n"
    "main{display:grid;grid-template-columns:1fr 15rem;gap:1rem;max-width:60rem;margin:1rem auto;padding:0 1rem}\n"
    "section,aside{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;padding:1rem}\n"
    "#log{list-style:none;margin:0;padding:0;height:24rem;overflow:auto}\n"
    "#log li{padding:.3rem 0;border-bottom:1px solid #eef}#log .me{color:#1a5fb4}#log .sys{color:#888;font-style:italic}\n"
    "#log .room{color:#26a269}form{display:flex;gap:.5rem;margin-top:.7rem}input{flex:1;min-width:0;padding:.45rem}\n"
    "button{padding:.45rem .9rem}aside h2{font-size:.95rem;margin:.2rem 0 .5rem}#online{padding-left:1.1rem}\n"
    "</style></head><body>\n"
    "<header><h1>wsio chat</h1><span id=\"status\">connecting…</span></header>\n"
    "<main><section><ul id=\"log\"></ul>\n"
    "<form id=\"send\"><input id=\"msg\" autocomplete=\"off\" placeholder=\"Message everyone\">"
    "<button>Send</button></form>\n"
    "<form id=\"roomsend\"><input id=\"roommsg\" autocomplete=\"off\" placeholder=\"Message your room\">"
    "<button>To room</button></form></section>\n"
    "<aside><h2>You</h2><form id=\"nickf\"><input id=\"nick\" maxlength=\"32\" placeholder=\"Nickname\">"
    "<button>Set</button></form>\n"
    "<h2>Room</h2><form id=\"roomf\"><input id=\"room\" placeholder=\"e.g. lobby\"><button id=\"roombtn\">Join</button>"
    "</form><p id=\"inroom\"></p>\n"
    "<h2>Online <span id=\"count\"></span></h2><ul id=\"online\"></ul></aside></main>\n"
    "<script src=\"/socket.io/socket.io.js\"></script>\n"
    "<script>\n"
    "const $=id=>document.getElementById(id);\n"
    "const socket=io();let room='';\n"
    "let nick=localStorage.getItem('wsio-nick')||('guest-'+Math.floor(Math.random()*1000));\n"
    "$('nick').value=nick;\n"
    "function add(text,cls){const li=document.createElement('li');li.textContent=text;if(cls)li.className=cls;"
    "$('log').appendChild(li);$('log').scrollTop=$('log').scrollHeight;}\n"
    "socket.on('connect',()=>{$('status').textContent='connected ('+socket.io.engine.transport.name+')';"
    "socket.emit('nick',nick);if(room)socket.emit('join',room,()=>{});});\n"
    "socket.io.engine&&socket.io.on('open',()=>socket.io.engine.on('upgrade',t=>"
    "$('status').textContent='connected ('+t.name+')'));\n"
    "socket.on('disconnect',r=>{$('status').textContent='disconnected: '+r;});\n"
    "socket.on('clientMsg',m=>add((m&&m.nick?m.nick:'someone')+': '+(m&&m.text!==undefined?m.text:m)));\n"
    "socket.on('roomMsg',m=>add('['+room+'] '+(m&&m.nick?m.nick:'someone')+': '+(m&&m.text!==undefined?m.text:m),'room'));\n"
    "socket.on('online',o=>{$('count').textContent='('+o.count+')';$('online').replaceChildren(...o.names.map(n=>"
    "{const li=document.createElement('li');li.textContent=n;return li;}));});\n"
    "$('send').onsubmit=e=>{e.preventDefault();const t=$('msg').value;if(!t)return;"
    "socket.emit('serverMsg',{nick,text:t});add('me: '+t,'me');$('msg').value='';};\n"
    "$('roomsend').onsubmit=e=>{e.preventDefault();const t=$('roommsg').value;if(!t)return;"
    "if(!room){add('join a room first','sys');return;}"
    "socket.emit('toRoom',room,{nick,text:t});add('['+room+'] me: '+t,'me');$('roommsg').value='';};\n"
    "$('nickf').onsubmit=e=>{e.preventDefault();nick=$('nick').value||nick;localStorage.setItem('wsio-nick',nick);"
    "socket.emit('nick',nick);};\n"
    "$('roomf').onsubmit=e=>{e.preventDefault();const r=$('room').value;"
    "if(room){socket.emit('leave',room,()=>{});add('left '+room,'sys');}"
    "if(!r||r===room){room='';$('inroom').textContent='';$('roombtn').textContent='Join';return;}"
    "socket.emit('join',r,res=>{if(res==='ok'){room=r;$('inroom').textContent='In room: '+r;"
    "add('joined '+r,'sys');}else add('cannot join '+r+': '+(res&&res.error),'sys');});};\n"
    "</script></body></html>\n";
