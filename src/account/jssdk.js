// openid-gateway: wx.config for this page, signed by the gateway.
// <script src="/.gateway/jssdk.js" data-js-api-list="updateAppMessageShareData,scanQRCode"
//         data-open-tag-list="wx-open-launch-weapp" [data-debug]></script>
// Then: openidGateway.jssdk.ready.then(function () { wx.… }) — or wx.ready as usual.
// After a route change in a single-page app: openidGateway.jssdk.configure().
(function () {
  "use strict";
  var prefix = __PREFIX__, sdk = __SDK__;
  var me = document.currentScript;
  var list = function (name) {
    return ((me && me.getAttribute(name)) || "").split(/[\s,]+/).filter(Boolean);
  };
  // iOS WeChat checks the signature against the URL the page was entered with; Android
  // against the current one.
  var entry = location.href.split("#")[0];
  var ios = /iPhone|iPad|iPod/i.test(navigator.userAgent);
  var loading = null;
  function load() {
    if (window.wx && window.wx.config) return Promise.resolve();
    return loading || (loading = new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = sdk;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("the JS-SDK did not load: " + sdk)); };
      document.head.appendChild(s);
    }));
  }
  function configure(jsApiList, openTagList) {
    var url = ios ? entry : location.href.split("#")[0];
    var asked = fetch(prefix + "/jssdk/config?url=" + encodeURIComponent(url), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.message || "HTTP " + r.status);
        return body;
      });
    });
    return Promise.all([asked, load()]).then(function (got) {
      var c = got[0];
      return new Promise(function (resolve, reject) {
        window.wx.error(function (e) { reject(new Error((e && e.errMsg) || "wx.config failed")); });
        window.wx.ready(function () { resolve(c); });
        window.wx.config({
          debug: !!(me && me.hasAttribute("data-debug")),
          appId: c.appId,
          timestamp: c.timestamp,
          nonceStr: c.nonceStr,
          signature: c.signature,
          jsApiList: jsApiList || list("data-js-api-list"),
          openTagList: openTagList || list("data-open-tag-list"),
        });
      });
    });
  }
  var ready = configure();
  ready.then(
    function (c) { document.dispatchEvent(new CustomEvent("openid-gateway:jssdk", { detail: { ok: true, url: c.url } })); },
    function (e) { document.dispatchEvent(new CustomEvent("openid-gateway:jssdk", { detail: { ok: false, error: String(e.message || e) } })); }
  );
  window.openidGateway = window.openidGateway || {};
  window.openidGateway.jssdk = { ready: ready, configure: configure };
})();
