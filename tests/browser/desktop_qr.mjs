// Headless Chromium as a desktop browser (its own User-Agent, HeadlessChrome) on an app that
// signs desktop browsers in by QR code: a page asked for with a query and a #fragment leads to
// the mock's QR page (WeCom's web login or WeChat's website login), not to "open in WeChat";
// once a phone scans it (POST /mock/qr/scan, as the mock's phone would), the page comes back
// through the gateway's callback to the page asked for, fragment kept, served by the upstream.
// Then one refusal: WeCom refuses a member outside the app's visible range (carol), the page
// shows why and the browser stays signed out; the website app's used scan id scans no more.
// Prints one JSON line of results (and the mock's counters right after the sign-in as
// `stats`); exits 1 on the first failed check.
//
// Env: GW (gateway origin), MOCK (mock origin), PROVIDER (wecom or website), HOST_RULES,
// CHROMIUM, OUT (screenshots).
import { check, launch, report, results, stats } from "./common.mjs";

const { GW, MOCK, PROVIDER, OUT } = process.env;
const QR_PATH = { wecom: "/wwlogin/sso/login", website: "/connect/qrconnect" }[PROVIDER];
if (!QR_PATH) throw new Error(`PROVIDER must be wecom or website, not ${PROVIDER}`);

// A fresh desktop browser window (Chromium's own User-Agent) that asked for `url` and is now
// on the mock's QR page, and every URL its main frame requested on the way.
async function toQrPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const navigated = [];
  page.on("request", (r) => {
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) navigated.push(r.url());
  });
  await page.goto(url);
  try {
    await page.waitForSelector("#mock-qr", { timeout: 15000 });
  } catch (e) {
    check("qr_page_shown", false, `${page.url()} ${JSON.stringify(navigated)} ${(await page.content()).slice(0, 400)}`);
  }
  return { context, page, navigated };
}

// The mock's phone: `user` scans the QR page whose scan id is `id`.
async function scan(id, user) {
  const r = await fetch(`${MOCK}/mock/qr/scan?scan=${encodeURIComponent(id)}&user=${user}`, { method: "POST" });
  return { status: r.status, body: await r.json() };
}

const onQrPage = (u) => u.startsWith(`${MOCK}${QR_PATH}?`);
const openInApp = (html) => html.includes("Open in WeChat") || html.includes("Open in WeCom");

const browser = await launch();
try {
  // 1. The QR page, reached through the gateway's login.
  const { context, page, navigated } = await toQrPage(browser, `${GW}/desk/page?x=1#frag`);
  results.navigated = navigated;
  const ua = await page.evaluate(() => navigator.userAgent);
  results.ua = ua;
  check("desktop_user_agent", ua.includes("HeadlessChrome") && !/MicroMessenger|wxwork|Mobile/.test(ua), ua);
  const html = await page.content();
  check("qr_page_before_scan", onQrPage(page.url()) && !openInApp(html), `${page.url()} ${html.slice(0, 400)}`);
  check(
    "via_gateway_login",
    navigated[0] === `${GW}/desk/page?x=1` && navigated.some((u) => u.startsWith(`${GW}/.gateway/login?`)),
    JSON.stringify(navigated),
  );
  await page.screenshot({ path: `${OUT}/desktop-qr-${PROVIDER}.png`, fullPage: true });
  const before = new Set((await context.cookies(GW)).map((c) => c.name));

  // 2. alice scans; the page polls, follows the callback and lands where it was asked to.
  const id = await page.getAttribute("#mock-qr", "data-scan");
  const scanned = await scan(id, "alice");
  check("scan_accepted", scanned.status === 200 && scanned.body.scanned === true, JSON.stringify(scanned));
  try {
    await page.waitForURL((u) => u.href.startsWith(`${GW}/desk/page`), { timeout: 15000 });
  } catch (e) {
    check("landed", false, `${page.url()} ${JSON.stringify(navigated)} ${(await page.content()).slice(0, 400)}`);
  }
  check("landed", page.url() === `${GW}/desk/page?x=1#frag`, page.url());
  check("via_callback", navigated.some((u) => u.startsWith(`${GW}/.gateway/callback?`)), JSON.stringify(navigated));
  const body = (await page.textContent("body")).trim();
  check("upstream_served", body === "upstream saw /desk/page?x=1", body);
  const session = (await context.cookies(GW)).filter((c) => !before.has(c.name)).map((c) => c.name);
  check("session_set", session.length > 0, JSON.stringify(await context.cookies(GW)));
  results.stats = await stats(MOCK);
  await page.screenshot({ path: `${OUT}/desktop-qr-${PROVIDER}-landed.png`, fullPage: true });

  if (PROVIDER === "wecom") {
    // 3. carol is a member outside the app's visible range: WeCom refuses her scan, the page
    //    says why, and the browser is still signed out.
    const other = await toQrPage(browser, `${GW}/desk/other?y=2`);
    const refusedId = await other.page.getAttribute("#mock-qr", "data-scan");
    const refused = await scan(refusedId, "carol");
    check("hidden_member_refused", refused.status === 200 && refused.body.refused === true, JSON.stringify(refused));
    try {
      await other.page.waitForSelector("#mock-qr.done", { timeout: 15000 });
    } catch (e) {
      check("refusal_shown", false, `${other.page.url()} ${(await other.page.content()).slice(0, 400)}`);
    }
    const shown = (await other.page.textContent("#mock-qr-msg")).trim();
    check("refusal_shown", shown === refused.body.message && shown.includes("visible range"), shown);
    check("refused_stays_on_qr_page", onQrPage(other.page.url()), other.page.url());
    await other.page.screenshot({ path: `${OUT}/desktop-qr-wecom-refused.png`, fullPage: true });
    const names = (await other.context.cookies(GW)).map((c) => c.name);
    check("refused_no_session", !names.some((n) => session.includes(n)), names.join(","));
    // Asking again leads to a new QR page, not to the upstream.
    await other.page.goto(`${GW}/desk/other?y=2`);
    await other.page.waitForSelector("#mock-qr", { timeout: 15000 });
    check("refused_still_signed_out", onQrPage(other.page.url()), other.page.url());
    await other.context.close();
  } else {
    // 3. A scan id is scanned once: scanning alice's again is refused.
    const again = await scan(id, "alice");
    check("used_scan_refused", again.status === 404, JSON.stringify(again));
  }
  await context.close();
} finally {
  await browser.close();
}
report();
