"""The demo campus: the seed's installation (6 dormitory buildings and shops, 12 buses of 27
meters) as a database whose buses point at ``main.py simulate``.

Buses 2k-1 and 2k feed dormitory building k; on every even bus the last two meters feed shops
(the simulator gives those meters a shop's load curve: ``is_shop``). Meter serials follow the
simulator's ``serial_for`` so recharge tokens reach the right meter. Occupant names are
generated from the seed. Every room and shop gets a prepaid account whose opening balance is
taken over from its meter at the first reading, as when VoltKeeper replaces a vendor system.
"""

from __future__ import annotations

import random
from pathlib import Path

from app.core import accounts, operators
from app.core.operators import Operator, Role
from app.errors import UserFacingError
from app.i18n import _
from app.simulator.identity import is_shop, serial_for
from app.storage import campus
from app.storage.accounts import insert_tariff
from app.storage.db import open_database
from app.storage.models import Bus, Meta

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬鹏辉浩宇轩子涵欣怡梓博文"
DEMO_PRICE = "0.588"
#: The demo's operators, one per role, to try what each may do.
DEMO_OPERATORS = (("admin", Role.ADMINISTRATOR), ("cashier", Role.CASHIER),
                  ("finance", Role.FINANCE), ("maintenance", Role.MAINTENANCE),
                  ("viewer", Role.VIEWER))
#: The simulator's default ``--port``: bus k of the demo listens on 5020 + k.
DEFAULT_DEMO_PORT = 5020
ROOMS_PER_FLOOR = 10
STUDENTS_PER_ROOM = 4


def _name(rng: random.Random) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def create_demo_campus(db_path: Path, *, buses: int = 12, meters: int = 27,
                       host: str = "127.0.0.1", port: int = DEFAULT_DEMO_PORT,
                       transport: str = "tcp",
                       profile: str = "acrel-ddsy1352", seed: int = 1,
                       poll_interval_s: float = 5.0,
                       open_accounts: bool = True,
                       password: str | None = None) -> tuple[dict[str, int], str | None]:
    """Create the demo campus in a new database. Refuses a database that has a campus.

    Its operators (``DEMO_OPERATORS``) get ``password`` (scripts and tests: not to be
    changed), or else one generated password, returned so it can be shown once, to be
    changed at each operator's first sign-in. Returns the counts and the generated password
    (None when ``password`` was given)."""
    if buses < 1 or meters < 1 or meters > 247:
        raise UserFacingError(_("buses must be at least 1 and meters per bus 1 to 247"))
    open_database(db_path)
    if not campus.is_empty():
        raise UserFacingError(_("{path} already holds a campus; choose a new file")
                              .format(path=db_path))
    rng = random.Random(seed)
    system = Operator.system("demo")
    counts = {"buildings": 0, "rooms": 0, "shops": 0, "meters": 0, "occupants": 0}
    with campus.atomic():
        root = campus.add_node(None, "campus", "湘塘校区", "XT")
        shops_building: int | None = None
        building_ids: dict[int, int] = {}
        floor_ids: dict[tuple[int, int], int] = {}
        room_counter: dict[int, int] = {}
        shop_counter = 0
        nodes_with_meters: list[int] = []
        for b in range(1, buses + 1):
            bus_id = campus.add_bus(f"B{b:02d}", bus_link(transport, host, port, b),
                                    poll_interval_s)
            building_no = (b - 1) // 2 + 1
            for unit in range(1, meters + 1):
                if is_shop(b, unit, meters):
                    if shops_building is None:
                        shops_building = campus.add_node(root, "building", "商业街", "S",
                                                         sort_key=10_000)
                        counts["buildings"] += 1
                    shop_counter += 1
                    node = campus.add_node(shops_building, "shop", f"商铺{shop_counter:02d}",
                                           f"S-{shop_counter:02d}", sort_key=shop_counter)
                    campus.add_occupant(node, _name(rng), f"T{rng.randrange(10**6):06d}",
                                        f"139{rng.randrange(10**8):08d}")
                    counts["shops"] += 1
                    counts["occupants"] += 1
                else:
                    if building_no not in building_ids:
                        building_ids[building_no] = campus.add_node(
                            root, "building", f"{building_no}号宿舍楼", str(building_no),
                            sort_key=building_no)
                        counts["buildings"] += 1
                    idx = room_counter.get(building_no, 0)
                    room_counter[building_no] = idx + 1
                    floor_no = idx // ROOMS_PER_FLOOR + 1
                    if (building_no, floor_no) not in floor_ids:
                        floor_ids[(building_no, floor_no)] = campus.add_node(
                            building_ids[building_no], "floor", f"{floor_no}F",
                            f"{building_no}-{floor_no}F", sort_key=floor_no)
                    room_no = f"{floor_no}{idx % ROOMS_PER_FLOOR + 1:02d}"
                    node = campus.add_node(floor_ids[(building_no, floor_no)], "room",
                                           f"{building_no}-{room_no}", f"{building_no}-{room_no}",
                                           sort_key=idx)
                    for _s in range(STUDENTS_PER_ROOM):
                        campus.add_occupant(node, _name(rng),
                                            f"2024{rng.randrange(10**6):06d}",
                                            f"138{rng.randrange(10**8):08d}")
                        counts["occupants"] += 1
                    counts["rooms"] += 1
                campus.add_meter(bus_id, unit, profile, serial_for(b, unit), node)
                counts["meters"] += 1
                nodes_with_meters.append(node)
        # the simulated meters charge 0.5880 yuan/kWh: the demo tariff is the same
        for group in ("dorm", "shop"):
            insert_tariff(group, "2000-01-01", DEMO_PRICE, "", "0", "demo")
        if open_accounts:
            for node in nodes_with_meters:
                accounts.open_account(system, node, adopt_meter_balance=True)
                counts["accounts"] = counts.get("accounts", 0) + 1
        for key, value in {"demo": "1", "demo_buses": buses, "demo_meters": meters,
                           "demo_port": port, "demo_host": host, "demo_transport": transport,
                           "demo_profile": profile, "demo_seed": seed}.items():
            Meta.insert(key=key, value=str(value)).on_conflict_replace().execute()
        generated = add_demo_operators(password)
        counts["operators"] = len(DEMO_OPERATORS)
    return counts, generated


def add_demo_operators(password: str | None = None) -> str | None:
    """One operator per role (``DEMO_OPERATORS``) with ``password``, or with one generated
    password (returned) that each changes at the first sign-in."""
    system = Operator.system("demo")
    generated = None if password else operators.generate_password()
    for name, role in DEMO_OPERATORS:
        operators.add_operator(system, name, role.value, password or generated,
                               must_change=generated is not None, check_strength=False)
    return generated


def bus_link(transport: str, host: str, port: int, bus: int) -> str:
    """Where demo bus ``bus`` is: the simulator's bus k listens on ``port`` + k."""
    return f"{transport}://{host}:{port + bus}"


def repoint_demo_buses(port: int) -> None:
    """Point the open demo database's buses at a simulator started with ``--port port``."""
    settings = demo_settings()
    transport = settings.get("demo_transport", "tcp")
    host = settings.get("demo_host", "127.0.0.1")
    with campus.atomic():
        for b in range(1, int(settings.get("demo_buses", 0)) + 1):
            Bus.update(link=bus_link(transport, host, port, b)).where(
                Bus.name == f"B{b:02d}").execute()
        Meta.insert(key="demo_port", value=str(port)).on_conflict_replace().execute()


def demo_settings() -> dict[str, str]:
    return {row.key: row.value for row in Meta.select() if row.key.startswith("demo")}
