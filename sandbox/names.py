"""Static word lists the world generator draws people, companies and campaigns from."""

from __future__ import annotations

# fmt: off

FIRST_NAMES: tuple[str, ...] = (
    "Robert", "Elizabeth", "William", "James", "Michael", "Katherine", "Jennifer", "Christopher",
    "Daniel", "Matthew", "Joseph", "Thomas", "Richard", "Anthony", "Steven", "Andrew", "Joshua",
    "Nicholas", "Margaret", "Patricia", "Susan", "Deborah", "Rebecca", "Samantha", "Alexander",
    "Benjamin", "Jonathan", "Timothy", "Edward", "Charles", "Victoria", "Jessica", "Kimberly",
    "Jacqueline", "Gregory", "Douglas", "Abigail", "Theodore", "Zachary", "Nathaniel", "Maria",
    "Linda", "Barbara", "Sarah", "Karen", "Nancy", "Lisa", "Emily", "Michelle", "Laura", "Amanda",
    "Melissa", "Stephanie", "Rachel", "Hannah", "Olivia", "Sophia", "Emma", "Grace", "Chloe",
    "Priya", "Aisha", "Mei", "Yuki", "Fatima", "Ingrid", "Lucia", "Elena", "Camila", "Noor",
    "David", "John", "Mark", "Paul", "Kevin", "Brian", "George", "Ryan", "Eric", "Jacob", "Gary",
    "Jason", "Justin", "Scott", "Brandon", "Raymond", "Frank", "Peter", "Aaron", "Adam", "Henry",
    "Carlos", "Diego", "Mateo", "Arjun", "Ravi", "Wei", "Kenji", "Omar", "Tariq", "Lars", "Jonas",
    "Olga", "Irene", "Diana", "Helen", "Julia", "Naomi", "Ruth", "Alice", "Clara", "Vera", "Ada",
)

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker",
    "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook",
    "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly",
    "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood",
    "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo",
    "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell", "Jenkins", "Perry",
    "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes", "Gonzales", "Fisher",
    "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander", "Hamilton", "Graham",
    "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes", "Bryant", "Herrera",
    "Gibson", "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Ford", "Castro",
    "Marshall", "Owens", "Harrison", "Fernandez", "McDonald", "Woods", "Washington", "Kennedy",
    "Wells", "Vargas", "Henry", "Chen", "Freeman", "Webb", "Tucker", "Guzman", "Burns", "Crawford",
    "Olson", "Simpson", "Porter", "Hunter", "Gordon", "Mendez", "Silva", "Shaw", "Snyder", "Mason",
    "Dixon", "Munoz", "Hunt", "Hicks", "Holmes", "Palmer", "Wagner", "Black", "Robertson", "Boyd",
    "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills", "Meyer", "Rice", "Schmidt", "Garza",
    "Daniels", "Ferguson", "Nichols", "Stephens", "Soto", "Weaver", "Ryan", "Gardner", "Payne",
    "Grant", "Dunn", "Kelley", "Spencer", "Hawkins", "Arnold", "Pierce", "Hansen", "Peters",
    "Santos", "Hart", "Bradley", "Knight", "Elliott", "Cunningham", "Duncan", "Armstrong", "Hudson",
    "Carroll", "Lane", "Riley", "Andrews", "Ray", "Berry", "Perkins", "Hoffman", "Johnston",
    "Matthews", "Pena", "Richards", "Contreras", "Willis", "Carpenter", "Lawrence", "Sandoval",
    "O'Brien", "O'Connor", "Larsen", "Novak", "Kowalski", "Yamamoto", "Tanaka", "Singh", "Shah",
    "Okafor", "Mensah", "Haddad", "Rossi", "Bianchi", "Dubois", "Lambert", "Weber", "Fischer",
)

# Formal first name -> nicknames a person may type into a booking form.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Rob", "Bobby"),
    "Elizabeth": ("Liz", "Beth", "Lizzie"),
    "William": ("Bill", "Will", "Billy"),
    "James": ("Jim", "Jimmy"),
    "Michael": ("Mike", "Mikey"),
    "Katherine": ("Kate", "Kathy", "Katie"),
    "Jennifer": ("Jen", "Jenny"),
    "Christopher": ("Chris",),
    "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",),
    "Joseph": ("Joe", "Joey"),
    "Thomas": ("Tom", "Tommy"),
    "Richard": ("Rick", "Rich", "Dick"),
    "Anthony": ("Tony",),
    "Steven": ("Steve",),
    "Andrew": ("Andy", "Drew"),
    "Joshua": ("Josh",),
    "Nicholas": ("Nick",),
    "Margaret": ("Maggie", "Peggy", "Meg"),
    "Patricia": ("Pat", "Patty", "Trish"),
    "Susan": ("Sue", "Suzy"),
    "Deborah": ("Deb", "Debbie"),
    "Rebecca": ("Becky", "Becca"),
    "Samantha": ("Sam", "Sammy"),
    "Alexander": ("Alex", "Xander"),
    "Benjamin": ("Ben", "Benny"),
    "Jonathan": ("Jon", "Johnny"),
    "Timothy": ("Tim",),
    "Edward": ("Ed", "Ted", "Eddie"),
    "Charles": ("Charlie", "Chuck"),
    "Victoria": ("Vicky", "Tori"),
    "Jessica": ("Jess", "Jessie"),
    "Kimberly": ("Kim",),
    "Jacqueline": ("Jackie",),
    "Gregory": ("Greg",),
    "Douglas": ("Doug",),
    "Abigail": ("Abby",),
    "Theodore": ("Ted", "Theo"),
    "Zachary": ("Zach",),
    "Nathaniel": ("Nate", "Nat"),
    "Samuel": ("Sam",),
    "Stephanie": ("Steph",),
    "Alexandra": ("Alex",),
    "Peter": ("Pete",),
    "Raymond": ("Ray",),
    "Benedict": ("Ben",),
    "Jacob": ("Jake",),
    "David": ("Dave",),
    "Kenneth": ("Ken",),
}

# Two-word company stems (A + B, optionally + C) give hundreds of thousands of distinct names.
COMPANY_A: tuple[str, ...] = (
    "Acme", "Blue", "Red", "Green", "Silver", "Golden", "Iron", "Stone", "North", "South", "East",
    "West", "Bright", "Clear", "Swift", "True", "Prime", "Summit", "Harbor", "River", "Lake",
    "Maple", "Oak", "Pine", "Cedar", "Willow", "Aspen", "Birch", "Falcon", "Eagle", "Hawk", "Fox",
    "Wolf", "Bear", "Lion", "Tiger", "Orca", "Coral", "Pearl", "Ruby", "Jade", "Onyx", "Cobalt",
    "Crimson", "Amber", "Indigo", "Violet", "Scarlet", "Azure", "Ivory", "Copper", "Bronze",
    "Nova", "Stellar", "Lunar", "Solar", "Polar", "Arctic", "Alpine", "Coastal", "Prairie",
    "Canyon", "Mesa", "Delta", "Sierra", "Vista", "Horizon", "Meridian", "Pioneer", "Frontier",
    "Liberty", "Union", "Keystone", "Cornerstone", "Bridge", "Beacon", "Lantern", "Compass",
    "Anchor", "Sail", "Harvest", "Orchard", "Meadow", "Valley", "Ridge", "Peak", "Crest", "Grove",
    "Brook", "Spring", "Rapid", "Quantum", "Vector", "Vertex", "Matrix", "Pixel", "Signal", "Pulse",
    "Echo", "Atlas", "Titan", "Apex", "Zenith", "Orbit", "Nimbus", "Cirrus", "Granite", "Marble",
    "Slate", "Quartz", "Ember", "Blaze", "Spark", "Bold", "Noble", "Loyal", "Ever", "Kind",
)

COMPANY_B: tuple[str, ...] = (
    "Works", "Labs", "Systems", "Software", "Analytics", "Dynamics", "Solutions", "Partners",
    "Group", "Holdings", "Ventures", "Capital", "Logistics", "Health", "Foods", "Energy", "Media",
    "Studios", "Designs", "Digital", "Networks", "Robotics", "Bio", "Pharma", "Motors", "Freight",
    "Supply", "Trading", "Consulting", "Advisors", "Legal", "Realty", "Homes", "Builders",
    "Construction", "Engineering", "Manufacturing", "Textiles", "Apparel", "Outfitters", "Goods",
    "Brands", "Retail", "Market", "Kitchen", "Bakery", "Brewing", "Coffee", "Farms", "Dairy",
    "Clinic", "Dental", "Fitness", "Wellness", "Learning", "Academy", "Education", "Travel",
    "Tours", "Hospitality", "Events", "Security", "Insurance", "Finance", "Payments", "Data",
    "Cloud", "Devices", "Electric", "Solar", "Water", "Air", "Marine", "Aviation", "Transit",
    "Mobility", "Print", "Paper", "Packaging", "Chemicals", "Metals", "Plastics", "Tools",
    "Instruments", "Optics", "Audio", "Vision", "Games", "Interactive", "Creative", "Collective",
)

COMPANY_C: tuple[str, ...] = (
    "", "", "", "", "", "Americas", "Global", "International", "USA", "West", "East", "North",
    "Pacific", "Atlantic", "Midwest", "Direct", "Online", "Pro", "Plus", "One", "360", "Hub",
    "Co-op", "Worldwide", "Express", "Central", "United", "National", "Regional", "Local",
    "Partners", "Services", "Technologies", "Industries", "Enterprises", "Associates",
)

# Legal suffix on the CRM company record; "" for none.
LEGAL_SUFFIXES: tuple[str, ...] = ("Inc.", "Inc.", "Inc.", "LLC", "LLC", "Corp.", "Ltd", "Co.", "", "")

DOMAIN_TLDS: tuple[str, ...] = ("com", "com", "com", "com", "io", "co", "net", "ai")

# Personal mailbox providers for people's real addresses.
PERSONAL_DOMAINS: tuple[str, ...] = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com")

# Other addresses people type into booking forms (never anyone's real address domain).
ALTERNATE_DOMAINS: tuple[str, ...] = ("icloud.com", "hotmail.com", "proton.me", "aol.com", "fastmail.com")

PLUS_TAGS: tuple[str, ...] = ("calendly", "demo", "sales", "work", "meetings", "vendors")

INDUSTRIES: tuple[str, ...] = (
    "COMPUTER_SOFTWARE", "INFORMATION_TECHNOLOGY_AND_SERVICES", "MARKETING_AND_ADVERTISING",
    "HOSPITAL_HEALTH_CARE", "FINANCIAL_SERVICES", "RETAIL", "CONSTRUCTION", "REAL_ESTATE",
    "EDUCATION_MANAGEMENT", "LOGISTICS_AND_SUPPLY_CHAIN", "FOOD_BEVERAGES", "CONSUMER_GOODS",
    "MANAGEMENT_CONSULTING", "LEGAL_SERVICES", "INSURANCE", "MACHINERY", "HOSPITALITY",
)

CITIES: tuple[tuple[str, str], ...] = (
    ("San Francisco", "United States"), ("New York", "United States"), ("Austin", "United States"),
    ("Chicago", "United States"), ("Seattle", "United States"), ("Boston", "United States"),
    ("Denver", "United States"), ("Atlanta", "United States"), ("Miami", "United States"),
    ("Los Angeles", "United States"), ("Portland", "United States"), ("Phoenix", "United States"),
    ("Toronto", "Canada"), ("Vancouver", "Canada"), ("London", "United Kingdom"),
    ("Dublin", "Ireland"), ("Berlin", "Germany"), ("Amsterdam", "Netherlands"),
)

JOB_TITLES: tuple[str, ...] = (
    "CEO", "Founder", "COO", "CFO", "VP Sales", "VP Marketing", "Head of Growth",
    "Marketing Manager", "Sales Manager", "Operations Manager", "Office Manager",
    "Account Executive", "Product Manager", "Engineering Manager", "Controller",
    "Director of Operations", "Owner", "General Manager", "Consultant", "Analyst",
)

# Real US area codes (geographic), for plausible numbers.
AREA_CODES: tuple[str, ...] = (
    "201", "202", "203", "205", "206", "207", "208", "212", "213", "214", "215", "216", "217",
    "218", "219", "224", "225", "228", "229", "231", "234", "239", "240", "248", "251", "252",
    "253", "254", "256", "260", "262", "267", "269", "270", "276", "281", "301", "302", "303",
    "304", "305", "307", "308", "309", "310", "312", "313", "314", "315", "316", "317", "318",
    "319", "320", "321", "323", "330", "334", "336", "337", "339", "347", "351", "352", "360",
    "361", "385", "386", "401", "402", "404", "405", "406", "407", "408", "409", "410", "412",
    "413", "414", "415", "417", "419", "423", "424", "425", "430", "432", "434", "435", "440",
    "443", "469", "478", "479", "480", "484", "501", "502", "503", "504", "505", "507", "508",
    "509", "510", "512", "513", "515", "516", "517", "518", "520", "530", "540", "541", "551",
    "559", "561", "562", "563", "567", "570", "571", "573", "574", "575", "580", "585", "586",
    "601", "602", "603", "605", "606", "607", "608", "609", "610", "612", "614", "615", "616",
    "617", "618", "619", "620", "623", "626", "630", "631", "636", "641", "646", "650", "651",
    "657", "660", "661", "662", "678", "682", "701", "702", "703", "704", "706", "707", "708",
    "712", "713", "714", "715", "716", "717", "718", "719", "720", "724", "727", "731", "732",
    "734", "740", "747", "754", "757", "760", "763", "765", "770", "772", "773", "774", "775",
    "781", "785", "786", "801", "802", "803", "804", "805", "806", "808", "810", "812", "813",
    "814", "815", "816", "817", "818", "828", "830", "831", "832", "843", "845", "847", "848",
    "850", "856", "857", "858", "859", "860", "862", "863", "864", "865", "870", "872", "878",
    "901", "903", "904", "906", "907", "908", "909", "910", "912", "913", "914", "915", "916",
    "917", "918", "919", "920", "925", "928", "931", "936", "937", "940", "941", "947", "949",
    "951", "952", "954", "956", "970", "971", "972", "973", "978", "979", "980", "985", "989",
)

# Free-text phone entries no simple parser reads; `None` means no number can be recovered.
PHONE_TEXTS_UNPARSEABLE: tuple[str, ...] = (
    "ask reception", "n/a", "see notes", "call the front desk", "TBD", "none given",
)

# values typed into a number or date property through an import or an integration that did not
# check them (the HubSpot API returns every property as text)
AMOUNT_TEXTS_MALFORMED: tuple[str, ...] = ("NaN", "Infinity", "-Infinity", "abc", "TBD", "12,5.00.1")
DATE_TEXTS_MALFORMED: tuple[str, ...] = (
    "02/30/{year}", "{year}-02-30", "04/31/{year}", "13/13/{year}", "end of Q3 {year}",
)

TIMEZONES: tuple[str, ...] = (
    "America/New_York", "America/New_York", "America/Chicago", "America/Denver",
    "America/Los_Angeles", "America/Los_Angeles", "America/Phoenix", "Europe/London",
)

DEAL_PRODUCTS: tuple[str, ...] = (
    "Starter plan", "Growth plan", "Scale plan", "Onboarding package", "Annual license",
    "Implementation", "Team seats", "Enterprise pilot",
)

MEETING_TOPICS: tuple[str, ...] = (
    "Pricing", "A product demo", "Integrations", "Onboarding timeline", "Reporting needs",
    "Migrating from a spreadsheet", "Team plan", "Security questions",
)

IMPORT_LISTS: tuple[str, ...] = (
    "Trade show 2025", "Webinar attendees", "Partner referrals", "Conference badge scans",
    "Old CRM export", "Sales prospect list",
)

REFERRAL_SITES: tuple[str, ...] = ("g2.com", "capterra.com", "producthunt.com", "linkedin.com", "reddit.com")
SEARCH_ENGINES: tuple[str, ...] = ("google", "google", "google", "bing", "duckduckgo")
NEWSLETTERS: tuple[str, ...] = ("newsletter", "product-update", "webinar-invite", "nurture")

CAMPAIGN_THEMES: tuple[str, ...] = (
    "Brand", "Competitor", "Generic", "Retargeting", "Lookalike", "Spring Promo", "Summer Sale",
    "Back to School", "Black Friday", "Year End", "Webinar", "Free Trial", "Demo Request",
    "Case Study", "Industry", "Local", "Remarketing", "Prospecting", "Launch", "Awareness",
)
CAMPAIGN_REGIONS: tuple[str, ...] = ("US", "US East", "US West", "Canada", "UK", "EMEA", "Global")
# fmt: on


# People of other countries (variety switch `international`): names with letters accent
# stripping leaves alone (ø, ß, æ, ł, đ, the dotless i) and phones of their own country. Per country:
# (country name, IANA time zone, dial code, national trunk prefix, national-number prefixes
# that are valid numbers, digits after the prefix, how the national number is grouped).
INTERNATIONAL: dict[str, tuple[str, str, str, str, tuple[str, ...], int, tuple[int, ...]]] = {
    "DK": ("Denmark", "Europe/Copenhagen", "45", "", ("26", "27", "28"), 6, (2, 2, 2, 2)),
    "NO": ("Norway", "Europe/Oslo", "47", "", ("41", "46", "47", "48", "92", "93", "95"), 6, (3, 2, 3)),
    "DE": ("Germany", "Europe/Berlin", "49", "0", ("302", "303", "304", "306", "308"), 6, (2, 7)),
    "GB": ("United Kingdom", "Europe/London", "44", "0", ("207", "203", "208"), 7, (2, 4, 4)),
    "PL": ("Poland", "Europe/Warsaw", "48", "", ("222", "223", "224", "225", "226"), 6, (2, 3, 2, 2)),
    "TR": ("Turkey", "Europe/Istanbul", "90", "0", ("2122", "2123", "2124", "2125"), 6, (3, 3, 2, 2)),
    "RS": ("Serbia", "Europe/Belgrade", "381", "0", ("112", "113", "114"), 6, (2, 7)),
    "FR": ("France", "Europe/Paris", "33", "0", ("14", "15", "16"), 7, (1, 2, 2, 2, 2)),
    "ES": ("Spain", "Europe/Madrid", "34", "", ("913", "914", "915"), 6, (3, 2, 2, 2)),
    "SE": ("Sweden", "Europe/Stockholm", "46", "0", ("85", "86", "87"), 6, (1, 3, 2, 2)),
}
INTERNATIONAL_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "DK": (
        ("Søren", "Mette", "Jørgen", "Åse", "Bjørn", "Mads"),
        ("Østergaard", "Mølgaard", "Sørensen", "Kjær", "Æbelø"),
    ),
    "NO": (
        ("Ævar", "Ingrid", "Øystein", "Kjærsti", "Bård"),
        ("Bjørnstad", "Haugen", "Sæther", "Løvås", "Dæhli"),
    ),
    "DE": (
        ("Jürgen", "Jörg", "Käthe", "Günther", "Björn", "Jörn"),
        ("Weiß", "Groß", "Schäfer", "Köhler", "Strauß"),
    ),
    "GB": (
        ("Siân", "Zoë", "Chloë", "Renée", "Noël"),
        ("O'Brien", "Ní Bhriain", "McAllister", "Fitz-Gerald", "Brontë"),
    ),
    "PL": (
        ("Łukasz", "Paweł", "Małgorzata", "Wojciech", "Żaneta"),
        ("Wróbel", "Łukaszewski", "Żak", "Grabowski", "Słowik"),
    ),
    "TR": (("Işık", "Çağla", "Gökhan", "Şule", "Ilkay"), ("Yılmaz", "Öztürk", "Çelik", "Şahin", "Aydın")),
    "RS": (
        ("Đorđe", "Dušan", "Ljiljana", "Željko", "Miloš"),
        ("Đorđević", "Petrović", "Đukić", "Živković", "Nikolić"),
    ),
    "FR": (
        ("Éloïse", "Hélène", "François", "Jérôme", "Anaïs"),
        ("Lefèvre", "Bézier", "Gagné", "Théroux", "Dupré"),
    ),
    "ES": (("José", "Martín", "Iñigo", "Begoña", "Ángel"), ("Peña", "Muñoz", "Núñez", "Ibáñez", "Gómez")),
    "SE": (
        ("Åsa", "Björn", "Göran", "Märta", "Östen"),
        ("Ångström", "Söderberg", "Nyström", "Åberg", "Lindqvist"),
    ),
}
# free-text booking questions (variety switch `free_text_questions`)
FREE_TEXT_QUESTIONS: tuple[str, ...] = (
    "What would you like to discuss?",
    "Anything we should know before the call?",
    "How did you hear about us?",
)
HEARD_ABOUT: tuple[str, ...] = ("A friend", "LinkedIn", "Google", "A podcast", "Your newsletter", "G2")
