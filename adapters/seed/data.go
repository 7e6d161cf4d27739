package seed

import "github.com/cxledger/cxledger/domain"

// The vocabulary the generator draws from. Names carry an ASCII handle for
// e-mail addresses, so that Zoë Ñúñez is zoe.nunez@… as a real shop would
// make her, and the display names exercise unicode end to end.

type person struct{ display, handle string }

// market is a country the shop sells to: its currency, locale, phone
// numbering and the names its customers have.
type market struct {
	country, locale, currency string
	weight                    int // share of customers, in percent
	phonePrefix               string
	phoneFormat               string // x = a digit drawn at random
	first, last               []person
}

var markets = []market{
	{"DE", "de-DE", "EUR", 26, "+49", "15x xxxxxxxx", []person{{"Jürgen", "juergen"}, {"Anna", "anna"}, {"Lukas", "lukas"}, {"Sophie", "sophie"}, {"Maximilian", "maximilian"}, {"Leonie", "leonie"}}, []person{{"Müller", "mueller"}, {"Schmidt", "schmidt"}, {"Weiß", "weiss"}, {"Schäfer", "schaefer"}, {"Becker", "becker"}}},
	{"FR", "fr-FR", "EUR", 18, "+33", "6 xx xx xx xx", []person{{"Zoé", "zoe"}, {"Élodie", "elodie"}, {"Théo", "theo"}, {"Camille", "camille"}, {"Noël", "noel"}}, []person{{"Lefèvre", "lefevre"}, {"Dubois", "dubois"}, {"Moreau", "moreau"}, {"Girard", "girard"}, {"Faure", "faure"}}},
	{"ES", "es-ES", "EUR", 14, "+34", "6xx xxx xxx", []person{{"Zoë", "zoe"}, {"José", "jose"}, {"Lucía", "lucia"}, {"Íñigo", "inigo"}, {"Martina", "martina"}}, []person{{"Ñúñez", "nunez"}, {"García", "garcia"}, {"Muñoz", "munoz"}, {"Martínez", "martinez"}, {"López", "lopez"}}},
	{"IT", "it-IT", "EUR", 9, "+39", "3xx xxx xxxx", []person{{"Giulia", "giulia"}, {"Luca", "luca"}, {"Niccolò", "niccolo"}, {"Chiara", "chiara"}}, []person{{"Rossi", "rossi"}, {"Bianchi", "bianchi"}, {"Esposito", "esposito"}, {"Ricci", "ricci"}}},
	{"NL", "nl-NL", "EUR", 8, "+31", "6 xxxxxxxx", []person{{"Daan", "daan"}, {"Sanne", "sanne"}, {"Bram", "bram"}, {"Fleur", "fleur"}}, []person{{"de Vries", "devries"}, {"Jansen", "jansen"}, {"van Dijk", "vandijk"}, {"Bakker", "bakker"}}},
	{"US", "en-US", "USD", 12, "+1", "(xxx) xxx-xxxx", []person{{"Emily", "emily"}, {"Michael", "michael"}, {"Olivia", "olivia"}, {"James", "james"}, {"Ava", "ava"}}, []person{{"Smith", "smith"}, {"Johnson", "johnson"}, {"Williams", "williams"}, {"Brown", "brown"}}},
	{"GB", "en-GB", "GBP", 8, "+44", "7xxx xxxxxx", []person{{"Oliver", "oliver"}, {"Amelia", "amelia"}, {"Harry", "harry"}, {"Isla", "isla"}}, []person{{"Taylor", "taylor"}, {"O'Brien", "obrien"}, {"Evans", "evans"}, {"Wright", "wright"}}},
	{"JP", "ja-JP", "JPY", 5, "+81", "90-xxxx-xxxx", []person{{"陽翔", "haruto"}, {"さくら", "sakura"}, {"蓮", "ren"}, {"結衣", "yui"}}, []person{{"佐藤", "sato"}, {"鈴木", "suzuki"}, {"高橋", "takahashi"}, {"田中", "tanaka"}}},
}

var mailDomains = []string{"example.com", "example.org", "example.net", "mail.example", "post.example"}

var companies = []string{"Acme GmbH", "Nordwind AG", "Société Lumière SARL", "Ibérica Logística S.L.", "Tulipa B.V.", "Bluebird Inc.", "Thames & Co Ltd", "株式会社サクラ", "Alpenglühen KG", "Cortado S.p.A."}

// product is an item of the catalogue, priced in euro cents.
type product struct {
	sku, description string
	euroCents        int64
}

var catalogue = []product{
	{"TEA-GREEN-100", "Sencha green tea, 100 g", 1290},
	{"TEA-BLACK-250", "Assam black tea, 250 g", 1850},
	{"COF-ESP-1K", "Espresso beans, 1 kg", 2490},
	{"COF-FILTER-500", "Filter coffee, 500 g", 1190},
	{"MUG-STONE", "Stoneware mug", 1500},
	{"KETTLE-GOOSE", "Gooseneck kettle", 6900},
	{"GRINDER-BURR", "Burr grinder", 12900},
	{"SUB-MONTHLY", "Monthly tasting box", 3400},
	{"GIFT-CARD-50", "Gift card", 5000},
	{"FILTER-PAPER", "Filter papers ×100", 490},
}

// enterprise is what B2B opportunities sell.
var enterprise = []string{"Office coffee service", "Annual tea subscription", "Espresso machines for 3 sites", "Corporate gifts Q4", "Café supply contract"}

var agents = []string{"user:marta.kowalska", "user:jonas.weber", "user:ines.ferreira", "user:akira.mori", "user:claire.martin", "user:sam.okafor"}

var salesReps = []string{"user:lena.hoffmann", "user:pablo.ruiz", "user:grace.lee"}

var ticketSubjects = []string{
	"Order arrived damaged", "Where is my parcel?", "Wrong item delivered", "Cannot log in to my account",
	"Invoice needs a VAT number", "Subscription charged twice", "Grinder makes a clicking noise",
	"Change delivery address", "Coupon code not accepted", "Question about allergens",
}

var resolutions = []string{"Replacement shipped", "Refund issued", "Explained the process", "Account unlocked", "Corrected invoice sent", "Address updated"}

var refundReasons = []string{"damaged in transit", "wrong item", "customer changed their mind", "late delivery", "duplicate charge"}

var lossDetail = map[domain.LossReason]string{
	domain.LossPrice: "Chose a cheaper supplier", domain.LossCompetitor: "Went with a competitor", domain.LossNoBudget: "Budget frozen",
	domain.LossNoDecision: "No decision made", domain.LossTiming: "Revisit next year", domain.LossProductFit: "Needs a machine we do not sell",
	domain.LossOther: "Company was acquired",
}

var npsComments = []string{"", "", "", "Fast delivery, great coffee!", "Support took too long.", "Love the tasting box.", "Prices went up.", "Très bon service 👍", "Sehr zufrieden."}
