"""Opens ecca's web console in headless Chromium (Debian's chromium and chromedriver).

usage: console_judge.py BASE_URL LOGIN_URL SCREENSHOT

Checks: without a session the console shows the sign-in page; the login link opens the
dashboard (indicators, charts, platforms, audit chain) with a session cookie that is
HttpOnly, Secure and SameSite=Strict; the same link does not work twice. Prints one JSON
line with what it saw; exits non-zero on the first failed check.
"""
import json
import shutil
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main():
    base, login, shot = sys.argv[1:4]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver")
    if not chromium or not driver_bin:
        sys.exit("chromium and chromedriver are required (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              # The console's certificate chains to the CA's credential root, which this
              # throwaway profile does not trust; TLS is still used (Secure cookies need it).
              "--ignore-certificate-errors", "--window-size=1280,2000"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path=driver_bin), options=opts)
    seen = {}
    try:
        driver.get(base + "/")
        assert "sign in" in driver.title.lower(), driver.title
        assert "ecca console login" in driver.page_source
        driver.get(login)
        assert driver.current_url.rstrip("/") == base.rstrip("/"), driver.current_url
        page = driver.page_source
        for want in ("Evaluation indicators", "Issuance and revocations over time",
                     "Platforms", "Audit chain", "Certificates expiring soon",
                     "national_algorithm_share", "<svg"):
            assert want in page, f"dashboard lacks {want!r}"
        assert "<script" not in page.lower()
        cookies = {c["name"]: c for c in driver.get_cookies()}
        c = cookies.get("ecca_console")
        assert c, cookies
        assert c.get("httpOnly") is True and c.get("secure") is True, c
        assert c.get("sameSite") == "Strict", c
        driver.save_screenshot(shot)
        seen["dashboard_title"] = driver.title
        seen["tiles"] = [t.text for t in driver.find_elements("css selector", ".tile")]
        # The link is single-use: a fresh browser session cannot reuse it.
        driver.delete_all_cookies()
        driver.get(login)
        assert "expired or was already used" in driver.page_source, driver.page_source[:300]
        driver.get(base + "/")
        assert "sign in" in driver.title.lower()
    finally:
        driver.quit()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
