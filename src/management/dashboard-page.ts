/**
 * The dashboard page: static HTML + a small script that polls `ring` (a RingView, see
 * http.ts) and draws, with Chart.js, the messages delivered per group over time, plus the
 * ring membership and each daemon's counters. Everything is relative to the page URL, so
 * the daemon's server and `tspread dashboard` serve the same page.
 *
 * Per-group count shown for the ring = the highest count any watched daemon reports (every
 * daemon orders every message, so they agree once caught up).
 *
 * For tests and scripting the page keeps its state on `window.tspreadDashboard`:
 * `{ chart, updates, lastView, groups() }`.
 */

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
#status-line { color: #555; }
#status-line.error { color: #b00; }
table { border-collapse: collapse; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.down { color: #b00; }
#chart-box { position: relative; height: 340px; max-width: 1000px; }
ul#rings { padding-left: 1.2rem; }
.member { display: inline-block; margin: 0 .3rem .2rem 0; padding: .05rem .4rem; border-radius: .3rem; background: #e6f0ff; }
`;

/** Runs in the browser; plain ES2017, no template literals (this file embeds it in one). */
const SCRIPT = String.raw`
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('dashboard-config').textContent);
  var HISTORY_POINTS_MAX = 600;
  var palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  var state = { updates: 0, lastView: null, chart: null, history: {} };
  window.tspreadDashboard = state;
  state.groups = function () { return Object.keys(state.history); };

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }
  function nameOf(snapshot, vid) {
    var list = snapshot.config.daemons;
    for (var i = 0; i < list.length; i++) if ((list[i].vid >>> 0) === (vid >>> 0)) return list[i].name;
    return String(vid >>> 0);
  }
  function ringId(snapshot) { return (snapshot.ring.membId.procId >>> 0) + ':' + snapshot.ring.membId.time; }

  state.chart = new Chart(document.getElementById('group-chart'), {
    type: 'line',
    data: { datasets: [] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      interaction: { mode: 'nearest', intersect: false },
      scales: {
        x: { type: 'linear', title: { display: true, text: 'time' },
             ticks: { callback: function (value) { return new Date(value).toLocaleTimeString(); } } },
        y: { beginAtZero: true, title: { display: true, text: 'messages delivered' } }
      },
      plugins: { legend: { position: 'bottom' } }
    }
  });

  function updateChart(view) {
    var counts = {};
    view.daemons.forEach(function (d) {
      if (!d.ok) return;
      d.snapshot.groups.forEach(function (g) {
        if (g.name.charAt(0) === '#') return; // private groups are sessions, not application groups
        counts[g.name] = Math.max(counts[g.name] || 0, g.messages);
      });
    });
    Object.keys(counts).forEach(function (group) {
      var points = state.history[group];
      if (!points) {
        points = state.history[group] = [];
        var color = palette[state.chart.data.datasets.length % palette.length];
        state.chart.data.datasets.push({ label: group, data: points, borderColor: color, backgroundColor: color, pointRadius: 2, tension: 0 });
      }
      points.push({ x: view.generatedAtMs, y: counts[group] });
      if (points.length > HISTORY_POINTS_MAX) points.shift();
    });
    state.chart.update('none');
    return counts;
  }

  function updateRings(view) {
    var rings = {};
    var order = [];
    view.daemons.forEach(function (d) {
      if (!d.ok) return;
      var id = ringId(d.snapshot);
      if (!rings[id]) { rings[id] = d.snapshot; order.push(id); }
    });
    var list = document.getElementById('rings');
    list.replaceChildren();
    order.forEach(function (id) {
      var s = rings[id];
      var item = el('li', null, 'ring');
      item.dataset.ringId = id;
      item.dataset.state = s.ring.state;
      item.appendChild(el('span', 'ring ' + id + ' (' + s.ring.state.toUpperCase() + ', leader ' + nameOf(s, s.ring.leaderVid) + '): '));
      s.ring.members.forEach(function (vid) {
        var member = el('span', nameOf(s, vid), 'member');
        member.dataset.vid = String(vid >>> 0);
        item.appendChild(member);
      });
      list.appendChild(item);
    });
    if (order.length === 0) list.appendChild(el('li', 'no daemon reachable'));
  }

  function updateDaemons(view) {
    var body = document.querySelector('#daemons tbody');
    body.replaceChildren();
    view.daemons.forEach(function (d) {
      var row = el('tr');
      if (!d.ok) {
        row.appendChild(el('td', d.source));
        var cell = el('td', 'unreachable: ' + d.error, 'down');
        cell.colSpan = 10;
        row.appendChild(cell);
      } else {
        var s = d.snapshot;
        [s.daemon.name, s.ring.state.toUpperCase(), ringId(s), s.ring.members.length, s.sessions, s.groups.length,
         s.traffic.messagesDelivered, s.traffic.bytesDelivered, s.ring.retransmissions, s.tokenRoundsPerSecond.toFixed(1),
         s.config.hash >>> 0].forEach(function (v) { row.appendChild(el('td', v)); });
        row.dataset.daemon = s.daemon.name;
      }
      body.appendChild(row);
    });
  }

  function updateGroups(view, counts) {
    var members = {};
    view.daemons.forEach(function (d) {
      if (!d.ok) return;
      d.snapshot.groups.forEach(function (g) { members[g.name] = Math.max(members[g.name] || 0, g.members); });
    });
    var body = document.querySelector('#groups tbody');
    body.replaceChildren();
    Object.keys(counts).sort().forEach(function (group) {
      var row = el('tr');
      row.dataset.group = group;
      [group, members[group], counts[group]].forEach(function (v) { row.appendChild(el('td', v)); });
      body.appendChild(row);
    });
  }

  function setStatus(text, error) {
    var line = document.getElementById('status-line');
    line.textContent = text;
    line.className = error ? 'error' : '';
  }

  function poll() {
    fetch('ring', { cache: 'no-store' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (view) {
        state.lastView = view;
        var counts = updateChart(view);
        updateRings(view);
        updateDaemons(view);
        updateGroups(view, counts);
        state.updates += 1;
        var up = view.daemons.filter(function (d) { return d.ok; }).length;
        setStatus(up + ' of ' + view.daemons.length + ' daemons reachable; updated ' + new Date(view.generatedAtMs).toLocaleTimeString(), up < view.daemons.length);
      })
      .catch(function (error) { setStatus('cannot reach the server: ' + error.message, true); })
      .then(function () { setTimeout(poll, config.pollMs); });
  }
  poll();
})();
`;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function dashboardHtml(options: { title: string; pollMs: number }): string {
  const config = JSON.stringify({ pollMs: options.pollMs }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(options.title)}</title>
<style>${STYLE}</style>
<script src="chart.umd.js"></script>
</head>
<body>
<h1>${escapeHtml(options.title)}</h1>
<div id="status-line">loading…</div>
<h2>Ring membership</h2>
<ul id="rings"></ul>
<h2>Messages per group</h2>
<div id="chart-box"><canvas id="group-chart"></canvas></div>
<table id="groups"><thead><tr><th>group</th><th>members</th><th>messages</th></tr></thead><tbody></tbody></table>
<h2>Daemons</h2>
<table id="daemons"><thead><tr><th>daemon</th><th>state</th><th>ring id</th><th>ring size</th><th>sessions</th><th>groups</th>
<th>msgs delivered</th><th>bytes delivered</th><th>retrans</th><th>rounds/s</th><th>config hash</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="dashboard-config">${config}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
