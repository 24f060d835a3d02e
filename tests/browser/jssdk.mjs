// Headless Chromium: a page behind the gateway whose URL has a query string and a hash route
// includes the gateway's jssdk.js; the JS-SDK (the mock WeChat's stand-in, which checks the
// signature as WeChat does) becomes ready, and the signature equals SHA-1 computed here over
// the page's own location.href cut at '#'. A page on a host the gateway does not serve for
// the account is refused. Prints one JSON line of results; exits 1 on the first failed check.
//
// Env: GW (gateway origin), OTHER (an origin on a host routed to the app but not served for
// the account), TICKET (the jsapi_ticket WeChat gave the gateway's token), HOST_RULES,
// CHROMIUM, OUT (screenshots).
import { check, launch, report } from "./common.mjs";
import { createHash } from "node:crypto";

const { GW, OTHER, TICKET, OUT } = process.env;
const WECHAT_UA =
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36 MicroMessenger/8.0.47.2560(0x28002F35) NetType/WIFI Language/zh_CN";
const browser = await launch();
try {
  const context = await browser.newContext({ userAgent: WECHAT_UA, viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const asked = page.waitForResponse((r) => r.url().includes("/.gateway/jssdk/config"), { timeout: 15000 });
  await page.goto(`${GW}/public/shop/list?cat=%E4%B9%A6&sort=new&empty=#/item/7?from=share`);
  const answer = await asked;
  const c = await answer.json();
  check("config_answered", answer.status() === 200, JSON.stringify(c));
  await page.waitForSelector('#jssdk:not([data-state="pending"])', { timeout: 15000 });
  const state = await page.getAttribute("#jssdk", "data-state");
  check("jssdk_ready", state === "ready", await page.textContent("#jssdk"));
  const href = await page.evaluate(() => location.href.split("#")[0]);
  check("signed_url_is_the_pages", c.url === href, `${c.url} vs ${href}`);
  const expected = createHash("sha1")
    .update(`jsapi_ticket=${TICKET}&noncestr=${c.nonceStr}&timestamp=${c.timestamp}&url=${href}`)
    .digest("hex");
  check("signature_matches_independent_sha1", c.signature === expected, `${c.signature} vs ${expected}`);
  check("hash_route_untouched", (await page.evaluate(() => location.hash)) === "#/item/7?from=share", page.url());
  await page.screenshot({ path: `${OUT}/jssdk-ready.png`, fullPage: true });

  const other = await context.newPage();
  const refused = other.waitForResponse((r) => r.url().includes("/.gateway/jssdk/config"), { timeout: 15000 });
  await other.goto(`${OTHER}/public/x?y=1#/z`);
  const r = await refused;
  const body = await r.json();
  check("unserved_host_refused", r.status() === 400 && body.error === "url_refused", JSON.stringify(body));
  await other.waitForSelector('#jssdk[data-state="failed"]', { timeout: 15000 });
  check("refusal_shown", (await other.textContent("#jssdk")).includes("does not serve"), await other.textContent("#jssdk"));
} finally {
  await browser.close();
}
report();
