// Headless Chromium against a live gateway, mock WeChat and demo app (started by
// tests/browser.rs). Prints one JSON line of results; exits 1 on the first failed check.
//
// Env: GW (gateway origin, e.g. http://gw.test:1234), APP2 (origin of an app host that logs
// in through GW's host), MOCK (mock origin), HOST_RULES (Chromium --host-resolver-rules), OUT
// (folder for screenshots), CHROMIUM (binary).
import { chromium } from "playwright-core";
import { CHROMIUM, chromiumArgs, check, launch, report, stats as mockStats } from "./common.mjs";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import jsQR from "jsqr";

const { GW, APP2, MOCK, OUT } = process.env;
const WECHAT_UA =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN";
const DESKTOP_UA =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

async function stats() {
  return mockStats(MOCK);
}

const browser = await launch();
try {
  const phone = { userAgent: WECHAT_UA, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 };

  // 1. A hash route survives the silent login; the app verified its token.
  const wechat = await browser.newContext(phone);
  const page = await wechat.newPage();
  await page.goto(`${GW}/app/#/order/42`);
  await page.waitForSelector("#openid", { timeout: 15000 });
  check("hash_route_kept", page.url() === `${GW}/app/#/order/42`, page.url());
  check("app_sees_route", (await page.textContent("#route")) === "#/order/42", await page.textContent("#route"));
  check("token_verified_by_app", (await page.getAttribute("#verified", "data-state")) === "ok", await page.textContent("#verified"));
  await page.screenshot({ path: `${OUT}/wechat-app.png`, fullPage: true });

  // 2. Cookies persist: a reload is served without WeChat.
  const before = (await stats()).authorizes;
  await page.reload();
  await page.waitForSelector("#openid");
  check("session_persists", (await stats()).authorizes === before, JSON.stringify(await stats()));

  // 3. fetch() from the page: 200 with a session; 401 JSON without one.
  await page.click("#call");
  await page.waitForFunction(() => document.getElementById("api").textContent.length > 0);
  const ok = await page.textContent("#api");
  check("fetch_with_session", ok.startsWith("200 ") && JSON.parse(ok.slice(4)).verified === true, ok);
  const anon = await browser.newContext(phone);
  const anonPage = await anon.newPage();
  await anonPage.goto(`${GW}/public/`);
  const api = await anonPage.evaluate(async () => {
    const r = await fetch("/app/api/orders");
    return { status: r.status, header: r.headers.get("x-login-url"), body: await r.json() };
  });
  check("fetch_gets_401_json", api.status === 401 && api.body.error === "login_required", JSON.stringify(api));
  check("fetch_login_url", api.body.login_url.startsWith(`${GW}/.gateway/login?return=`) && api.header === api.body.login_url, JSON.stringify(api));
  // The page's script can follow login_url and come back logged in.
  await anonPage.goto(api.body.login_url);
  await anonPage.waitForSelector("#verified");
  check("login_url_works", anonPage.url() === `${GW}/public/#` && !anonPage.url().includes("wechat_redirect") && (await anonPage.getAttribute("#verified", "data-state")) === "ok", anonPage.url());

  // 4. Logout ends the session; the next private page logs in again.
  await page.goto(`${GW}/.gateway/logout?return=/public/`);
  check("logout_returns", page.url() === `${GW}/public/`, page.url());
  const names = (await wechat.cookies()).map((c) => c.name);
  check("logout_clears_session", !names.includes("ogw_session"), names.join(","));
  const beforeLogin = (await stats()).authorizes;
  await page.goto(`${GW}/app/#/again`);
  await page.waitForSelector("#openid");
  check("login_again_after_logout", (await stats()).authorizes === beforeLogin + 1 && page.url() === `${GW}/app/#/again`, page.url());

  // 5. A browser whose settings block cookies stops at the loop breaker, not in a loop.
  const profile = mkdtempSync(join(tmpdir(), "ogw-nocookies-"));
  mkdirSync(join(profile, "Default"));
  writeFileSync(
    join(profile, "Default", "Preferences"),
    JSON.stringify({ profile: { default_content_setting_values: { cookies: 2 } } }),
  );
  const blocking = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: chromiumArgs, ...phone });
  try {
    const loopPage = await blocking.newPage();
    const beforeLoop = (await stats()).authorizes;
    await loopPage.goto(`${GW}/app/#/loop`);
    try {
      await loopPage.waitForSelector("text=登录没有成功", { timeout: 15000 });
    } catch (e) {
      check("loop_breaker_page", false, `${loopPage.url()} ${JSON.stringify(await stats())} ${(await loopPage.content()).slice(0, 300)}`);
    }
    const trips = (await stats()).authorizes - beforeLoop;
    check("loop_breaker_page", (await loopPage.content()).includes("Login did not complete"), loopPage.url());
    check("loop_breaker_at_most_n", trips >= 1 && trips <= Number(process.env.LOGIN_LIMIT || 3), `${trips} trips to WeChat`);
    await loopPage.screenshot({ path: `${OUT}/loop-breaker.png`, fullPage: true });
  } finally {
    await blocking.close();
    rmSync(profile, { recursive: true, force: true });
  }

  // 6. A desktop browser gets the QR page; its code decodes to the URL asked for.
  const desktop = await browser.newContext({ userAgent: DESKTOP_UA, viewport: { width: 1280, height: 900 } });
  const qrPage = await desktop.newPage();
  await qrPage.goto(`${GW}/order?id=7`);
  const shot = `${OUT}/qr-page.png`;
  await qrPage.screenshot({ path: shot, fullPage: true });
  const png = PNG.sync.read(readFileSync(shot));
  const decoded = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  check("qr_decodes_to_url", decoded && decoded.data === `${GW}/order?id=7`, decoded ? decoded.data : "no QR code found");
  await desktop.close();

  // 7. A second app host logs in through the login host: its hash route survives the hop, no
  //    URL outside the login host carries a code, none carries the openid.
  const second = await browser.newContext(phone);
  const shop2 = await second.newPage();
  const navigated = [];
  shop2.on("request", (r) => { if (r.isNavigationRequest()) navigated.push(r.url()); });
  const beforeApp2 = await stats();
  await shop2.goto(`${APP2}/app/#/cart/3`);
  await shop2.waitForSelector("#openid", { timeout: 15000 });
  check("app_host_hash_route_kept", shop2.url() === `${APP2}/app/#/cart/3`, shop2.url());
  check("app_host_sees_route", (await shop2.textContent("#route")) === "#/cart/3", await shop2.textContent("#route"));
  check("app_host_token_verified", (await shop2.getAttribute("#verified", "data-state")) === "ok", await shop2.textContent("#verified"));
  const openid = (await shop2.textContent("#openid")).trim();
  const loginHost = new URL(GW).host;
  const leaks = navigated.filter((u) => u.includes(openid) || (new URL(u).host !== loginHost && !u.startsWith(MOCK) && u.includes("code=")));
  const hopped = navigated.some((u) => u.startsWith(`${GW}/.gateway/login?handoff=`)) && navigated.some((u) => u.startsWith(`${APP2}/.gateway/ticket?`));
  check("app_host_via_login_host", hopped && leaks.length === 0, JSON.stringify({ navigated, leaks }));
  const afterApp2 = await stats();
  check("app_host_one_exchange", afterApp2.exchanges === beforeApp2.exchanges + 1, JSON.stringify(afterApp2));
  const sessions = (await second.cookies()).filter((c) => c.name === "ogw_session").map((c) => c.domain);
  check("app_host_own_cookie", sessions.includes(new URL(APP2).hostname) && sessions.includes(new URL(GW).hostname), sessions.join(","));
  await shop2.screenshot({ path: `${OUT}/app-host.png`, fullPage: true });
  await second.close();
} finally {
  await browser.close();
}
report();
